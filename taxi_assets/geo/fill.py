"""The lake step's zone filling: rows with coordinates and no location IDs get them.

Older yellow and green files (yellow 2009 - 2016-06, green 2013-08 - 2016-06) carry
pickup/dropoff longitude and latitude instead of PULocationID/DOLocationID. The
conversion hands every row group to a `ZoneFill` (convert.py), which sets the missing
IDs from the point's zone (taxi_assets.geo.locate) and counts what it could not place.
It does nothing for a file without coordinate columns, and never overwrites an ID the
file has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from taxi_assets.geo.locate import ZoneIndex, int32_array
from taxi_assets.spec.datasets import DatasetSpec

# Location column -> its (longitude, latitude) columns; names as decided for the spec.
COORDINATES = {
    "PULocationID": ("pickup_longitude", "pickup_latitude"),
    "DOLocationID": ("dropoff_longitude", "dropoff_latitude"),
}
# Metadata names: unlocated_pickups, unlocated_dropoffs, ...
SIDE = {"PULocationID": "pickups", "DOLocationID": "dropoffs"}


def has_coordinates(spec: DatasetSpec) -> bool:
    """Whether some months of the dataset can carry coordinates (its spec has the columns)."""
    names = {c.name for c in spec.columns}
    return any(location in names and set(coords) <= names for location, coords in COORDINATES.items())


@dataclass
class ZoneFill:
    """Fills location IDs of one file's row groups; `for_file` picks the sides the file has.

    `load` gives the zone index; it is called once, at the first file with coordinates,
    so months without coordinates never read the shapes.
    """

    load: Callable[[], ZoneIndex]
    columns: tuple[str, ...] = ()
    mapped: dict[str, int] = field(default_factory=dict)  # rows whose ID came from the coordinates
    unlocated: dict[str, int] = field(default_factory=dict)  # rows left without an ID
    rows: int = 0

    def __post_init__(self) -> None:
        self.load = cached(self.load)

    def for_file(self, file_columns: set[str]) -> ZoneFill:
        """A fresh filler for a file with `file_columns` (canonical names): only the
        location columns whose two coordinates the file carries are filled."""
        columns = tuple(loc for loc, coords in COORDINATES.items() if set(coords) <= file_columns)
        if columns:
            # Loaded now, before the conversion reads its first row group: the load's
            # transient (decompressing the stored arrays) does not add to the batches' peak.
            self.load()
        return ZoneFill(self.load, columns, {c: 0 for c in columns}, {c: 0 for c in columns})

    @property
    def index(self) -> ZoneIndex:
        return self.load()

    def __call__(self, table: pa.Table) -> pa.Table:
        self.rows += table.num_rows
        for location in self.columns:
            lon, lat = (table.column(name) for name in COORDINATES[location])
            have = table.column(location)
            found = self.index.locate_arrow(lon, lat)
            # The file's ID where it has one; else the point's zone (null when none).
            filled = pa.chunked_array([found]) if have.null_count == len(have) else _coalesce(have, found)
            self.mapped[location] += have.null_count - filled.null_count
            self.unlocated[location] += filled.null_count
            table = table.set_column(table.schema.get_field_index(location), table.schema.field(location), filled)
        return table

    def metadata(self) -> dict:
        """unlocated_pickups/_dropoffs, their shares of the month's rows, mapped_pickups/_dropoffs."""
        out: dict = {}
        for location in self.columns:
            side = SIDE[location]
            out[f"mapped_{side}"] = self.mapped[location]
            out[f"unlocated_{side}"] = self.unlocated[location]
            out[f"unlocated_{side}_share"] = round(self.unlocated[location] / self.rows, 6) if self.rows else 0.0
        return out


def _coalesce(have: pa.ChunkedArray, found: pa.Array) -> pa.ChunkedArray:
    """have where not null, else found."""
    have = have.combine_chunks()
    values = np.frombuffer(have.buffers()[1], dtype=np.int32, count=have.offset + len(have))[have.offset :]
    valid = valid_mask(have)
    found_values = np.frombuffer(found.buffers()[1], dtype=np.int32, count=found.offset + len(found))[found.offset :]
    return pa.chunked_array([int32_array(np.where(valid, values, found_values), valid | valid_mask(found))])


def valid_mask(array: pa.Array) -> np.ndarray:
    """The array's validity as booleans, from its bitmap."""
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    if array.null_count == len(array):
        return np.zeros(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), count=array.offset + len(array),
                         bitorder="little")[array.offset :]  # fmt: skip
    return bits.astype(bool)


def cached(load: Callable[[], ZoneIndex]) -> Callable[[], ZoneIndex]:
    """`load`, called at most once."""
    held: list[ZoneIndex] = []

    def once() -> ZoneIndex:
        if not held:
            held.append(load())
        return held[0]

    return once
