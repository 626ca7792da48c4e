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


def read_zones_csv(path: Path, source: str) -> ZonesFile:
    """The zones CSV with declared types; columns it lacks stay absent for the type check to name."""
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
