"""The taxi zone lookup: which borough and zone each LocationID of the trip files is.

Zone 264 is `NV` and 265 is `NA` (service_zone `N/A`): real names, which default
CSV readers (pandas, and pyarrow's default null spellings) turn into nulls. Here
only an empty (or blank) field is null, so those names stay text.

A lookup replaces the published one only when it is the whole table: every known
LocationID (1..265) exactly once and nothing else, each with a borough, zone and
service zone. A shorter file (cut, or a publisher's slip) would otherwise drop zones
from every mart that joins with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from taxi_assets.errors import ConversionError

ZONES_TABLE = "taxi_zone_lookup"
# The LocationIDs TLC's lookup holds (264 and 265: the unknown zones NV and NA).
KNOWN_LOCATION_IDS = range(1, 266)
ZONES_SCHEMA = pa.schema(
    [
        pa.field("LocationID", pa.int32(), nullable=False),
        pa.field("Borough", pa.string(), nullable=False),
        pa.field("Zone", pa.string(), nullable=False),
        pa.field("service_zone", pa.string(), nullable=False),
    ]
)


@dataclass
class ZonesFile:
    table: pa.Table
    # Columns of the file that are not in ZONES_SCHEMA (dropped).
    extra_columns: list[str]


def id_ranges(ids: list[int]) -> str:
    """3, 4, 5, 9 -> "3..5, 9": a list of IDs readable even when long."""
    parts: list[str] = []
    for i in sorted(ids):
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in parts)


def zone_problems(table: pa.Table) -> list[str]:
    """What makes a zone table unusable, in words (empty: a valid table): every column of
    ZONES_SCHEMA present and without nulls, each LocationID of KNOWN_LOCATION_IDS exactly
    once and no other."""
    import pyarrow.compute as pc

    problems = [f"missing column {name}" for name in ZONES_SCHEMA.names if name not in table.column_names]
    for name in ZONES_SCHEMA.names:
        if name in table.column_names and table[name].null_count:
            problems.append(f"{table[name].null_count} empty {name}")
    if "LocationID" in table.column_names:
        ids = table["LocationID"]
        known = set(KNOWN_LOCATION_IDS)
        present = [i for i in ids.to_pylist() if i is not None]
        lo, hi = KNOWN_LOCATION_IDS[0], KNOWN_LOCATION_IDS[-1]
        unknown = sorted({i for i in present if i not in known})
        if unknown:
            problems.append(f"LocationID outside {lo}..{hi}: {id_ranges(unknown[:20])}")
        counts = pc.value_counts(ids.drop_null())
        repeated = [c["values"] for c in counts.to_pylist() if c["counts"] > 1]
        if repeated:
            problems.append(f"LocationID not unique: {', '.join(map(str, sorted(repeated)[:5]))}")
        missing = sorted(known - set(present))
        if missing:
            problems.append(
                f"{len(missing)} of the {len(known)} known LocationIDs missing ({table.num_rows} rows): "
                f"{id_ranges(missing)}"
            )
    return problems


def _gzipped(path: Path) -> bool:
    """A lookup sent with Content-Encoding: gzip is stored as the gzip bytes under its .csv name."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _records(path: Path, source: str) -> list[list[str]]:
    """The file's records, blank lines left out. Python's csv module (the file is a few
    hundred lines): with skipinitialspace it reads `1, "EWR", "Newark Airport"` as quoted
    fields, which a strict CSV parser keeps as text with the quotes."""
    import csv
    import gzip

    try:
        with (gzip.open if _gzipped(path) else open)(path, "rt", encoding="utf-8-sig", newline="") as f:
            return [r for r in csv.reader(f, skipinitialspace=True) if any(v.strip() for v in r)]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise ConversionError(f"taxi zones: cannot read {source}: {exc}") from None


def read_zones_csv(path: Path, source: str) -> ZonesFile:
    """The zones CSV with declared types; columns it lacks stay absent for zone_problems to name.

    Names and values are trimmed, so `LocationID, Borough, ...` / `1, Bronx, ...` read like the
    published file; a blank field is null (zone_problems names it)."""
    records = _records(path, source)
    if not records:
        raise ConversionError(f"taxi zones: {source} is empty (no header line)")
    names = [n.strip() for n in records[0]]
    rows = records[1:]
    for line, row in enumerate(rows, 2):
        if len(row) != len(names):
            raise ConversionError(
                f"taxi zones: {source}: record {line} has {len(row)} fields, the header {len(names)}: {row!r}"
            )
    known = [name for name in ZONES_SCHEMA.names if name in names]
    extra = [name for name in names if name not in ZONES_SCHEMA.names]
    columns = {}
    for name in known:
        i = names.index(name)
        values = [row[i].strip() or None for row in rows]
        if name == "LocationID":
            columns[name] = pa.array(_location_ids(values, source), pa.int32())
        else:
            columns[name] = pa.array(values, pa.string())
    table = pa.table(columns) if columns else pa.table({"_": pa.nulls(len(rows))}).select([])
    return ZonesFile(table=table, extra_columns=extra)


def _location_ids(values: list[str | None], source: str) -> list[int | None]:
    import re

    bad = [v for v in values if v is not None and not re.fullmatch(r"[+-]?\d{1,9}", v)]
    if bad:
        raise ConversionError(
            f"taxi zones: {source}: LocationID not a whole number: {', '.join(repr(v) for v in bad[:5])}"
        )
    return [int(v) if v is not None else None for v in values]
