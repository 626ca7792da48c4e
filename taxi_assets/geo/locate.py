"""Longitude/latitude -> taxi zone LocationID, for whole arrays of points at once.

A grid over the zones' bounding box (lon/lat, cells of `FINE_CELL_DEG`) answers most
points with one array lookup: a cell that no zone border crosses lies in one zone or in
none, and holds that zone's ID (or 0). Only points in a cell that a border crosses are
tested exactly, with shapely's `intersects_xy` on prepared polygons (each zone clipped
to a 0.001-degree cell around the point), against the zones that touch that cell
(usually two), in ascending LocationID, stopping at the first hit. Each such test costs
GEOS 0.3-0.6 us, so the grid's job is to leave as few of them as possible.

The grid is built from the shapes by a quadtree pass with shapely (`STRtree` of cell
boxes queried with the zone borders): cells of `COARSE_CELL_DEG` first, and only the
cells a border crosses are cut in four, down to the fine cells: about 3 s of CPU, once per
process and shapes version (taxi_assets/defs/assets/lake.py caches it).

Rules:
- a point in no zone (0,0, water, outside the city, NaN, impossible values) -> null;
- a point on the border of two zones -> the smaller LocationID (the border counts as
  inside, and the first hit in ascending order is the smallest), so the result never
  depends on the zones' order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from taxi_assets.geo.shapes import geometries

COARSE_CELL_DEG = 0.004
LEVELS = 5  # 0.004 -> 0.00025 degrees (about 21 x 28 m at NYC's latitude)
FINE_CELL_DEG = COARSE_CELL_DEG / 2 ** (LEVELS - 1)
PIECE_LEVEL = 2  # zones are clipped to cells of 0.001 degrees for the exact tests


class ZoneIndex:
    """Point -> LocationID over a set of zone polygons in lon/lat."""

    def __init__(self, location_ids: np.ndarray, polygons: np.ndarray):
        self.location_ids = np.asarray(location_ids, dtype=np.int32)
        self.polygons = np.asarray(polygons, dtype=object)
        shapely.prepare(self.polygons)
        x0, y0, x1, y1 = shapely.total_bounds(self.polygons)
        self.x0, self.y0 = x0, y0
        self.nx = int(np.ceil((x1 - x0) / COARSE_CELL_DEG)) * 2 ** (LEVELS - 1)
        self.ny = int(np.ceil((y1 - y0) / COARSE_CELL_DEG)) * 2 ** (LEVELS - 1)
        grid, self.candidates, self.offsets = self._build()
        # Only the padded copy is kept (see _cell_index): about 15 MB of int32.
        self._padded = np.pad(grid, 1).ravel()

    @classmethod
    def from_table(cls, table: pa.Table) -> ZoneIndex:
        """From the lake's shapes (taxi_assets.geo.shapes.SHAPES_SCHEMA)."""
        return cls(table.column("LocationID").to_numpy(), geometries(table))

    # ------------------------------------------------------------------ build

    def _build(self):
        """grid[iy, ix] (fine cells): LocationID > 0, 0 for no zone, -(k + 1) for the
        k-th cell a border crosses, whose candidate zones (indexes into self.polygons)
        are candidates[offsets[k]:offsets[k + 1]].

        Level by level, each cell to classify carries (cell, zone) candidate pairs: the
        zones that can reach it (its parent's candidates; at the coarsest level, the zones
        whose bounding box meets it). A zone whose border crosses the cell (a border
        segment intersects the box) stays a candidate; any other candidate either holds
        the whole cell or none of it, which its centre tells. A cell no border crosses is
        done; the others are cut in four for the next level.
        """
        segments, segment_zone = _border_segments(self.polygons)
        segment_tree = shapely.STRtree(segments)
        size = COARSE_CELL_DEG
        ny, nx = self.ny >> (LEVELS - 1), self.nx >> (LEVELS - 1)
        iy, ix = (a.ravel() for a in np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij"))
        grid = np.zeros((ny, nx), dtype=np.int32)
        cell, zone = shapely.STRtree(self.polygons).query(self._boxes(iy, ix, size))  # bounding boxes meet
        for level in range(LEVELS):
            if level:
                grid = grid.repeat(2, axis=0).repeat(2, axis=1)
                size /= 2
                iy = (iy[:, None] * 2 + np.array([0, 0, 1, 1])).ravel()
                ix = (ix[:, None] * 2 + np.array([0, 1, 0, 1])).ravel()
                cell, zone = (cell[:, None] * 4 + np.arange(4)).ravel(), zone.repeat(4)
            boxes = self._boxes(iy, ix, size)
            hit_cell, hit_segment = segment_tree.query(boxes, predicate="intersects")
            crossing = np.unique(hit_cell.astype(np.int64) * len(self.polygons) + segment_zone[hit_segment])
            pair = cell.astype(np.int64) * len(self.polygons) + zone
            crosses = np.isin(pair, crossing)
            centre_x = self.x0 + (ix[cell] + 0.5) * size
            centre_y = self.y0 + (iy[cell] + 0.5) * size
            holds = ~crosses
            # intersects_xy, not contains_xy: a point on a border is in both zones.
            holds[holds] = shapely.intersects_xy(self.polygons[zone[holds]], centre_x[holds], centre_y[holds])
            crossed = np.zeros(len(boxes), dtype=bool)
            crossed[cell[crosses]] = True
            value = np.full(len(boxes), np.iinfo(np.int32).max, dtype=np.int32)
            np.minimum.at(value, cell[holds], self.location_ids[zone[holds]])
            value[value == np.iinfo(np.int32).max] = 0
            grid[iy, ix] = np.where(crossed, -1, value)
            # Candidates of the crossed cells, renumbered in the order of the crossed cells.
            keep = (crosses | holds) & crossed[cell]
            renumber = np.cumsum(crossed) - 1
            cell, zone = renumber[cell[keep]], zone[keep]
            iy, ix = iy[crossed], ix[crossed]
        order = np.lexsort((self.location_ids[zone], cell))  # ascending LocationID: see _exact
        cell, zone = cell[order], zone[order]
        grid[iy, ix] = -(np.arange(len(iy), dtype=np.int32) + 1)
        offsets = np.searchsorted(cell, np.arange(len(iy) + 1)).astype(np.int64)
        # Exact tests run on the zone clipped to a cell of PIECE_CELL_DEG around the point:
        # a handful of vertices instead of hundreds, several times faster per test.
        shift = LEVELS - 1 - PIECE_LEVEL
        size = COARSE_CELL_DEG / 2**PIECE_LEVEL
        py, px = iy[cell] >> shift, ix[cell] >> shift
        key = (py.astype(np.int64) * self.nx + px) * len(self.polygons) + zone
        keys, first, piece = np.unique(key, return_index=True, return_inverse=True)
        zone_of_piece = (keys % len(self.polygons)).astype(np.int32)
        x, y = self.x0 + px[first] * size, self.y0 + py[first] * size
        margin = 1e-7  # degrees (about 1 cm): points on the cell's own edge stay inside
        boxes = shapely.box(x - margin, y - margin, x + size + margin, y + size + margin)
        self.pieces = shapely.intersection(self.polygons[zone_of_piece], boxes)
        shapely.prepare(self.pieces)
        self.piece_ids = self.location_ids[zone_of_piece]
        return grid, piece.astype(np.int32), offsets

    def _boxes(self, iy: np.ndarray, ix: np.ndarray, size: float) -> np.ndarray:
        x, y = self.x0 + ix * size, self.y0 + iy * size
        return shapely.box(x, y, x + size, y + size)

    # ----------------------------------------------------------------- lookup

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """LocationID (int32) of each point, 0 where the point is in no zone."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        cell = self._padded.take(self._cell_index(lon, lat))
        mixed = np.flatnonzero(cell < 0)
        if len(mixed):
            cell[mixed] = self._exact(lon[mixed], lat[mixed], -cell[mixed] - 1)
        return cell

    def _cell_index(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Flat index into the padded grid: a ring of 0 cells around it takes every point
        outside the box, NaN included (casting NaN or a huge value to int gives the
        minimum int, which the clip sends to the ring)."""
        scale = 1.0 / FINE_CELL_DEG
        with np.errstate(invalid="ignore"):
            ix = ((lon - self.x0) * scale + 1.0).astype(np.int32)
            iy = ((lat - self.y0) * scale + 1.0).astype(np.int32)
        np.clip(ix, 0, self.nx + 1, out=ix)
        np.clip(iy, 0, self.ny + 1, out=iy)
        iy *= self.nx + 2
        iy += ix
        return iy

    def _exact(self, lon: np.ndarray, lat: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Exact answer for points in border cells. A cell's candidates are in ascending
        LocationID order and each point stops at its first hit: that is the smallest zone
        holding it (a border point is in both zones: intersects_xy, not contains_xy), and a
        point in the first zone costs one test."""
        starts = self.offsets[cells]
        counts = self.offsets[cells + 1] - starts
        result = np.zeros(len(lon), dtype=np.int32)
        active = np.arange(len(lon))
        for k in range(int(counts.max(initial=0))):
            active = active[counts[active] > k]
            piece = self.candidates[starts[active] + k]
            hit = shapely.intersects_xy(self.pieces[piece], lon[active], lat[active])
            result[active[hit]] = self.piece_ids[piece[hit]]
            active = active[~hit]
        return result

    def locate_arrow(self, lon: pa.Array | pa.ChunkedArray, lat: pa.Array | pa.ChunkedArray) -> pa.Array:
        """int32 LocationIDs with nulls where a point is in no zone or a coordinate is null."""
        x = _floats(lon)
        y = _floats(lat)
        ids = self.locate(x, y)
        return int32_array(ids, ids != 0)


def _border_segments(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every edge of every ring as a two-point line, and the index of its polygon: short
    pieces keep the tree's bounding boxes tight, so each box meets few of them."""
    rings = shapely.get_parts(shapely.boundary(polygons), return_index=True)
    coords, ring = shapely.get_coordinates(rings[0], return_index=True)
    same_ring = ring[1:] == ring[:-1]
    starts = np.flatnonzero(same_ring)
    lines = shapely.linestrings(np.stack([coords[starts], coords[starts + 1]], axis=1))
    return lines, rings[1][ring[starts]]


def int32_array(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """An int32 Arrow array from numpy values and validity, built from buffers: pa.array
    would import pandas (pyarrow's lazy shim), which the conversion otherwise never pays."""
    values = np.ascontiguousarray(values, dtype=np.int32)
    nulls = len(values) - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.int32(), len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


def _floats(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """float64 numpy values, NaN for nulls (from the buffers: no pandas import, see convert.py)."""
    if isinstance(values, pa.ChunkedArray):
        chunks = [_floats(c) for c in values.chunks]
        return np.concatenate(chunks) if chunks else np.empty(0)
    if values.type != pa.float64():
        raise TypeError(f"coordinates must be float64, got {values.type}")
    validity, data = values.buffers()
    out = np.frombuffer(data, dtype=np.float64, count=values.offset + len(values))[values.offset :].copy()
    if values.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=values.offset + len(values),
                             bitorder="little")[values.offset :]  # fmt: skip
        out[bits == 0] = np.nan
    return out
