"""The taxi zone lookup: which borough and zone each LocationID of the trip files is.

Zone 264 is `NV` and 265 is `NA` (service_zone `N/A`): real names, which default
CSV readers (pandas, and pyarrow's default null spellings) turn into nulls. Here
only an empty field is null, so those names stay text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from taxi_assets.errors import ConversionError

ZONES_TABLE = "taxi_zone_lookup"
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


def zone_problems(table: pa.Table) -> list[str]:
    """What makes a zone table unusable, in words (empty: a valid table): every column of
    ZONES_SCHEMA present and without nulls, LocationID at least 1 and unique."""
    import pyarrow.compute as pc

    problems = [f"missing column {name}" for name in ZONES_SCHEMA.names if name not in table.column_names]
    for name in ZONES_SCHEMA.names:
        if name in table.column_names and table[name].null_count:
            problems.append(f"{table[name].null_count} empty {name}")
    if "LocationID" in table.column_names:
        ids = table["LocationID"]
        if pc.any(pc.less(ids, 1)).as_py():
            problems.append("LocationID below 1")
        counts = pc.value_counts(ids.drop_null())
        repeated = [c["values"] for c in counts.to_pylist() if c["counts"] > 1]
        if repeated:
            problems.append(f"LocationID not unique: {', '.join(map(str, sorted(repeated)[:5]))}")
    return problems


def read_zones_csv(path: Path, source: str) -> ZonesFile:
    """The zones CSV with declared types; columns it lacks stay absent for zone_problems to name."""
    options = pacsv.ConvertOptions(
        column_types=ZONES_SCHEMA,
        null_values=[""],
        strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"taxi zones: cannot read {source}: {exc}") from None
    known = [name for name in ZONES_SCHEMA.names if name in table.column_names]
    extra = [name for name in table.column_names if name not in ZONES_SCHEMA.names]
    return ZonesFile(table=table.select(known), extra_columns=extra)
