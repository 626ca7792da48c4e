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
import pyarrow.csv as pacsv

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


def _ranges(ids: list[int]) -> str:
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
            problems.append(f"LocationID outside {lo}..{hi}: {_ranges(unknown[:20])}")
        counts = pc.value_counts(ids.drop_null())
        repeated = [c["values"] for c in counts.to_pylist() if c["counts"] > 1]
        if repeated:
            problems.append(f"LocationID not unique: {', '.join(map(str, sorted(repeated)[:5]))}")
        missing = sorted(known - set(present))
        if missing:
            problems.append(
                f"{len(missing)} of the {len(known)} known LocationIDs missing ({table.num_rows} rows): "
                f"{_ranges(missing)}"
            )
    return problems


def _gzipped(path: Path) -> bool:
    """A lookup sent with Content-Encoding: gzip is stored as the gzip bytes under its .csv name."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _header(path: Path, source: str) -> list[str]:
    """The header's names without the blanks around them (`LocationID, Borough, ...`)."""
    import csv
    import gzip
    import io

    try:
        with (gzip.open if _gzipped(path) else open)(path, "rb") as f:
            line = f.readline(1 << 16).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConversionError(f"taxi zones: cannot read {source}: {exc}") from None
    names = next(csv.reader(io.StringIO(line)), [])
    if not any(n.strip() for n in names):
        raise ConversionError(f"taxi zones: {source} has no header line (empty file?)")
    return [n.strip() for n in names]


def read_zones_csv(path: Path, source: str) -> ZonesFile:
    """The zones CSV with declared types; columns it lacks stay absent for zone_problems to name.

    Names and values are read as text and trimmed, so `1, Bronx, ...` reads like `1,Bronx,...`;
    a blank field is then null (zone_problems names it)."""
    import pyarrow.compute as pc

    names = _header(path, source)
    options = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        null_values=[""],
        strings_can_be_null=True,
    )
    try:
        stream = pa.input_stream(str(path), compression="gzip" if _gzipped(path) else None)
        table = pacsv.read_csv(
            stream, read_options=pacsv.ReadOptions(column_names=names, skip_rows=1), convert_options=options
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"taxi zones: cannot read {source}: {exc}") from None
    known = [name for name in ZONES_SCHEMA.names if name in table.column_names]
    extra = [name for name in table.column_names if name not in ZONES_SCHEMA.names]
    columns = {}
    for name in known:
        text = pc.utf8_trim_whitespace(table[name])
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        if name == "LocationID":
            text = _location_ids(text, source)
        columns[name] = text
    return ZonesFile(table=pa.table(columns) if columns else table.select([]), extra_columns=extra)


def _location_ids(text: pa.ChunkedArray, source: str) -> pa.ChunkedArray:
    import pyarrow.compute as pc

    whole = pc.match_substring_regex(text, r"^[+-]?\d{1,9}$")
    bad = pc.filter(text, pc.invert(pc.fill_null(whole, True))).to_pylist()
    if bad:
        shown = ", ".join(repr(v) for v in bad[:5])
        raise ConversionError(f"taxi zones: {source}: LocationID not a whole number: {shown}")
    return pc.cast(text, pa.int32())
