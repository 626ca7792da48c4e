"""Longitude/latitude -> taxi zone LocationID, for whole arrays of points at once.

A grid over the zones answers most points with one array lookup; cells a border crosses
are cut further (a quadtree), and only points very near a border reach a numpy side-of-line
test or an exact shapely test. A point in no zone gets null; one on a shared border the
smaller LocationID, whatever the zones' order. How and why in detail: docs/zones.md.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import shapely

from taxi_assets.geo.shapes import geometries

COARSE_CELL_DEG = 0.004
GRID_LEVELS = 4  # the dense grid: 0.004 -> 0.0005 degrees (about 42 x 56 m at NYC's latitude)
SUB_LEVELS = 5  # border cells cut further, down to 0.0005 / 32 degrees (about 1.3 x 1.7 m)
LEVELS = GRID_LEVELS + SUB_LEVELS
FINE_CELL_DEG = COARSE_CELL_DEG / 2 ** (GRID_LEVELS - 1)
LEAF_CELL_DEG = COARSE_CELL_DEG / 2 ** (LEVELS - 1)
PIECE_LEVEL = 3  # zones are clipped to cells of 0.0005 degrees for the exact tests
CHUNK_CELLS = 1 << 18  # cells classified at once in the build (shapely boxes: ~100 bytes each)
SPLIT_POINTS = 1 << 17  # larger calls are split between two threads (see ZoneIndex.locate)
CHUNK_POINTS = 1 << 19  # at most this many points located at once
# The lookup goes down the SUB_LEVELS quadtree levels in passes of STEPS levels each: a
# pass of two levels looks up one of a crossed cell's 16 grandchildren (the children's
# values, repeated four times for a child no border crosses): fewer passes over the points
# for a somewhat larger index.
STEPS = (2, 2, 1)
INDEX_FORMAT = "taxi-zone-index/3"  # bump when the stored arrays change meaning
# The grid and the quadtree levels are uint16: a value below MARK is a LocationID (0: no
# zone); MARK + r is a crossed cell, the (base[i >> BLOCK_SHIFT] + r)-th of its level,
# where base counts the crossed cells before each block of 2**BLOCK_SHIFT values.
MARK = 1 << 15
BLOCK_SHIFT = 14
BLOCK = 1 << BLOCK_SHIFT  # the last level: MARK + r an exact leaf, MARK + BLOCK + r a line leaf
# A point's path below its grid cell (see ZoneIndex._descend): leaf coordinates' low bits,
# y then x, -> the interleaved children (2 * y bit + x bit per level, first level highest).
LEAF_MASK = (1 << SUB_LEVELS) - 1
PATH_BITS = 2 * SUB_LEVELS
_LOW = np.arange(1 << PATH_BITS, dtype=np.int32)
_PATH = sum((((_LOW >> (SUB_LEVELS + s)) & 1) * 2 + ((_LOW >> s) & 1)) << (2 * s) for s in range(SUB_LEVELS)).astype(
    np.int32
)


class ZoneIndex:
    """Point -> LocationID over a set of zone polygons in lon/lat."""

    def __init__(self, location_ids: np.ndarray, polygons: np.ndarray):
        location_ids = np.asarray(location_ids, dtype=np.int32)
        polygons = np.asarray(polygons, dtype=object)
        shapely.prepare(polygons)
        x0, y0, x1, y1 = shapely.total_bounds(polygons)
        nx = int(np.ceil((x1 - x0) / COARSE_CELL_DEG)) * 2 ** (GRID_LEVELS - 1)
        ny = int(np.ceil((y1 - y0) / COARSE_CELL_DEG)) * 2 ** (GRID_LEVELS - 1)
        if location_ids.max(initial=0) >= MARK:
            raise ValueError(f"LocationIDs must stay below {MARK} (the index stores them as uint16)")
        grid, children, line, lines, candidates, offsets, pieces, piece_ids = _Build(
            location_ids, polygons, float(x0), float(y0), nx, ny
        ).run()
        padded, grid_base, _ = _block_coded(np.pad(grid, 1).ravel())
        del grid
        children = _stepped(children)
        coded = [_block_coded(c, line if step == len(STEPS) - 1 else None) for step, c in enumerate(children)]
        self._set(location_ids, float(x0), float(y0), nx, ny, padded, grid_base, [c for c, _, _ in coded],
                  [b for _, b, _ in coded], coded[-1][2], *lines, candidates, offsets, _wkb_objects(pieces),
                  piece_ids)  # fmt: skip

    def _set(self, location_ids, x0, y0, nx, ny, grid, grid_base, children, children_base, line_base,
             line_of_leaf, line_of_leaf_base, line_xy, line_dir, line_ids, candidates, offsets, pieces_wkb,
             piece_ids) -> None:  # fmt: skip
        """grid: the padded grid (uint16, see _block_coded); children: uint16 levels, same
        coding; the leaves of the last level are line leaves or exact leaves (see _lines)."""
        self.location_ids = np.asarray(location_ids, dtype=np.int32)
        self.x0, self.y0, self.nx, self.ny = x0, y0, nx, ny
        self._padded, self._grid_base = grid, grid_base
        self.children, self.children_base = children, children_base
        # Line leaves: the line (point x, y and direction dx, dy) of line_of_leaf[k] and the
        # IDs left of it, right of it and on it.
        self.line_base, self.line_of_leaf, self.line_ids = line_base, line_of_leaf, line_ids
        self.line_of_leaf_base = line_of_leaf_base  # see _windowed
        self.line_xy, self.line_dir = line_xy, line_dir  # float32 directions: off by < 1 um in a leaf
        self.candidates = _compact(np.asarray(candidates))
        self.offsets = _compact(np.asarray(offsets))
        # The pieces as WKB, each made a GEOS geometry at its first exact test and kept
        # (see _pieces): a month of trips needs a few thousand of them, and making them per
        # call cost more than the tests themselves.
        self.pieces_wkb = pieces_wkb
        self.pieces = np.full(len(pieces_wkb), None, dtype=object)
        self.piece_ids = np.asarray(piece_ids, dtype=np.uint16)

    @classmethod
    def from_table(cls, table: pa.Table) -> ZoneIndex:
        """From the lake's shapes (taxi_assets.geo.shapes.SHAPES_SCHEMA)."""
        return cls(table.column("LocationID").to_numpy(), geometries(table))

    # -------------------------------------------------------------- storage

    def save(self, path, **meta) -> None:
        """The index as one .npz file (compressed numpy arrays, in the dtypes it is used in:
        loading allocates each array once) plus `meta` (JSON: e.g. the shapes version it was
        built from)."""
        header = {"format": INDEX_FORMAT, "x0": self.x0, "y0": self.y0, "nx": self.nx, "ny": self.ny,
                  "grid_levels": GRID_LEVELS, "sub_levels": SUB_LEVELS, "steps": STEPS,
                  "coarse_cell_deg": COARSE_CELL_DEG,
                  "piece_level": PIECE_LEVEL, **meta}  # fmt: skip
        arrays = {f"children_{i}": c for i, c in enumerate(self.children)}
        arrays |= {f"children_base_{i}": c for i, c in enumerate(self.children_base)}
        wkb = self.pieces_wkb
        arrays |= {"line_base": self.line_base, "line_of_leaf": self.line_of_leaf, "line_xy": self.line_xy,
                   "line_of_leaf_base": self.line_of_leaf_base,
                   "line_dir": self.line_dir,
                   "line_ids": self.line_ids}  # fmt: skip
        with open(path, "wb") as f:
            np.savez_compressed(
                f,
                meta=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                location_ids=self.location_ids.astype(np.uint16),
                grid=self._padded,
                grid_base=self._grid_base,
                candidates=self.candidates,
                offsets=self.offsets,
                piece_ids=self.piece_ids,
                piece_wkb=np.frombuffer(b"".join(wkb), dtype=np.uint8),
                piece_wkb_ends=np.cumsum([len(w) for w in wkb]).astype(np.int64),
                **arrays,
            )

    @staticmethod
    def stored_meta(path) -> dict:
        """The JSON header of a stored index ({} if the file is not one)."""
        try:
            with np.load(path) as stored:
                return json.loads(stored["meta"].tobytes())
        except (OSError, ValueError, KeyError, EOFError):
            return {}

    @classmethod
    def load(cls, path) -> ZoneIndex:
        """A stored index (ValueError if it is not one of this code's format)."""
        with np.load(path) as stored:
            meta = json.loads(stored["meta"].tobytes())
            if meta.get("format") != INDEX_FORMAT:
                raise ValueError(f"zone index format {meta.get('format')!r}, this code reads {INDEX_FORMAT!r}")
            wkb = stored["piece_wkb"].tobytes()
            ends = stored["piece_wkb_ends"].tolist()
            pieces = np.empty(len(ends), dtype=object)
            pieces[:] = [wkb[a:b] for a, b in zip([0, *ends[:-1]], ends)]
            del wkb
            levels = range(len(meta["steps"]))
            index = cls.__new__(cls)
            index._set(
                stored["location_ids"], meta["x0"], meta["y0"], meta["nx"], meta["ny"], stored["grid"],
                stored["grid_base"], [stored[f"children_{i}"] for i in levels],
                [stored[f"children_base_{i}"] for i in levels], stored["line_base"], stored["line_of_leaf"],
                stored["line_of_leaf_base"],
                stored["line_xy"], stored["line_dir"], stored["line_ids"], stored["candidates"], stored["offsets"], pieces,
                stored["piece_ids"],
            )  # fmt: skip
        return index

    # ----------------------------------------------------------------- lookup

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """LocationID (int32) of each point, 0 where the point is in no zone.

        The lake step calls it per row group, so the lookup's temporaries stay small beside
        its batches. Arrays of over SPLIT_POINTS go in a few large chunks (up to
        CHUNK_POINTS each) alternating between this thread and a helper thread: numpy and
        shapely release the GIL in their array passes, so a free second core helps."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        if len(lon) <= SPLIT_POINTS:
            return self._locate(lon, lat)
        out = np.empty(len(lon), dtype=np.int32)
        size = min(CHUNK_POINTS, -(-len(lon) // 2))

        def chunks(starts: range) -> None:
            for start in starts:
                end = start + size
                out[start:end] = self._locate(lon[start:end], lat[start:end])

        starts = range(0, len(lon), size)
        second = _helper().submit(chunks, starts[1::2])
        chunks(starts[0::2])
        second.result()
        return out

    def _locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        top = self._top_index(lat, self.y0, self.ny)
        top *= self.nx + 2
        top += self._top_index(lon, self.x0, self.nx)
        value = self._padded.take(top)
        mixed = np.flatnonzero(value >= MARK)
        cell = value.astype(np.int32)
        if len(mixed):
            node = _rank(self._grid_base, top[mixed], value[mixed])
            lon, lat = lon[mixed], lat[mixed]
            ix, iy = self._leaf_index(lon, self.x0), self._leaf_index(lat, self.y0)
            cell[mixed] = self._descend(lon, lat, ix, iy, node)
        return cell

    @staticmethod
    def _top_index(values: np.ndarray, start: float, n: int) -> np.ndarray:
        """Index into the padded grid along one axis: the fine cell (FINE_CELL_DEG) plus one,
        so that the padded grid's ring of 0 cells takes every point outside the box. NaN or
        a huge value casts to the minimum int, which the clip sends to the ring too."""
        top = _cell_index(values, start, FINE_CELL_DEG, 1)
        np.clip(top, 0, n + 1, out=top)
        return top

    @staticmethod
    def _leaf_index(values: np.ndarray, start: float) -> np.ndarray:
        """Index of the leaf-sized cell (LEAF_CELL_DEG) of each value inside the box, plus
        one grid cell (2**SUB_LEVELS leaves), as _top_index counts."""
        return _cell_index(values, start, LEAF_CELL_DEG, 1 << SUB_LEVELS)

    def _descend(self, lon, lat, ix, iy, node) -> np.ndarray:
        """Border cells of the grid: down the levels below it (each crossed cell's four
        children: a LocationID, 0, or a crossed cell of the next level, see MARK), then the
        line leaves by their side, the other leaves by the exact test.

        Each point carries one int32: its index in the chunk (< 2**21, see CHUNK_POINTS)
        above its path, the child taken at each level in two bits (the interleaved low bits
        of its leaf coordinates, first level highest). A level's value is written for every
        point still going down (the deeper levels overwrite it), then only the points in
        crossed cells are kept: few passes over few, narrow arrays."""
        if len(node) >> (31 - PATH_BITS):
            raise ValueError(f"at most {1 << (31 - PATH_BITS)} points at once (see CHUNK_POINTS)")
        result = np.empty(len(node), dtype=np.int32)
        state = np.arange(len(node), dtype=np.int32)
        state <<= PATH_BITS
        low = iy & LEAF_MASK
        low <<= SUB_LEVELS
        low |= ix & LEAF_MASK
        state |= _PATH.take(low)
        del low
        shift = PATH_BITS
        for step, (children, base) in enumerate(zip(self.children, self.children_base)):
            bits = 2 * STEPS[step]
            shift -= bits
            position = state >> shift
            position &= (1 << bits) - 1
            node <<= bits
            position += node
            value = children.take(position)
            result[state >> PATH_BITS] = value
            keep = np.flatnonzero(value >= MARK)
            state, position, value = state.take(keep), position.take(keep), value.take(keep)
            if step < len(STEPS) - 1:
                node = _rank(base, position, value)
        # Leaves: the line leaves' points by the side of their line, the others exactly.
        active = state >> PATH_BITS
        line = value >= MARK + BLOCK
        if line.any():
            at = active[line]
            result[at] = self._side(lon[at], lat[at], _rank(self.line_base, position[line], value[line] - BLOCK))
            line = ~line
            active, position, value = active[line], position[line], value[line]
        if len(active):
            result[active] = self._exact(lon[active], lat[active], _rank(self.children_base[-1], position, value))
        return result

    def _side(self, lon: np.ndarray, lat: np.ndarray, leaves: np.ndarray) -> np.ndarray:
        """Points in line leaves: which side of the leaf's border (see _sides)."""
        line = self.line_of_leaf_base.take(leaves >> BLOCK_SHIFT)
        line += self.line_of_leaf.take(leaves)
        # take(axis=0), not [line]: numpy's fancy row indexing is ~10x slower here.
        xy, direction, ids = (a.take(line, axis=0) for a in (self.line_xy, self.line_dir, self.line_ids))
        lon -= xy[:, 0]
        lat -= xy[:, 1]
        column = _sides(lon, lat, direction[:, 0:2], direction[:, 2:4], ids[:, 3].astype(bool))
        return np.take_along_axis(ids, column[:, None], axis=1).ravel()

    def _exact(self, lon: np.ndarray, lat: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Exact answer for points in leaves a border crosses. A leaf's candidates are in
        ascending LocationID order and each point stops at its first hit: that is the
        smallest zone holding it (a border point is in both zones: intersects_xy, not
        contains_xy), and a point in the first zone costs one test."""
        starts = self.offsets[cells].astype(np.int64)
        counts = self.offsets[cells + 1] - starts
        result = np.zeros(len(lon), dtype=np.int32)
        active = np.arange(len(lon))
        for k in range(int(counts.max(initial=0))):
            active = active[counts[active] > k]
            piece = self.candidates[starts[active] + k]
            # In the pieces' order: consecutive tests read the same GEOS geometry (7 % less
            # time on 1M border-heavy points).
            order = np.argsort(piece, kind="stable")
            active, piece = active[order], piece[order]
            hit = shapely.intersects_xy(self._pieces(piece), lon[active], lat[active])
            result[active[hit]] = self.piece_ids[piece[hit]]
            active = active[~hit]
        return result

    def _pieces(self, piece: np.ndarray) -> np.ndarray:
        """The GEOS geometries of pieces `piece`, made from WKB at first use. Two threads may
        make the same piece at once: both store an equal geometry. Not prepared: 5 % faster
        tests, but GEOS builds a prepared geometry's index lazily and not thread-safely
        (libgeos/geos#825), and both threads of `locate` test the same pieces."""
        found = self.pieces.take(piece)
        missing = shapely.is_missing(found)
        if missing.any():
            new = np.unique(piece[missing])
            self.pieces[new] = shapely.from_wkb(self.pieces_wkb[new])
            found = self.pieces.take(piece)
        return found

    def locate_arrow(self, lon: pa.Array | pa.ChunkedArray, lat: pa.Array | pa.ChunkedArray) -> pa.Array:
        """int32 LocationIDs with nulls where a point is in no zone or a coordinate is null.

        The coordinates are read in place from the Arrow buffers (no float64 copies beside
        the batch); a null's slot holds any value,
        and its validity bit, not that value, makes the ID null."""
        x, x_valid = _floats(lon)
        y, y_valid = _floats(lat)
        ids = self.locate(x, y)
        valid = ids != 0
        for coordinate_valid in (x_valid, y_valid):
            if coordinate_valid is not None:
                valid &= coordinate_valid
        return int32_array(ids, valid)


class _Build:
    """The quadtree pass that classifies cells (see the module's docstring)."""

    def __init__(self, location_ids, polygons, x0, y0, nx, ny):
        self.location_ids, self.polygons = location_ids, polygons
        self.x0, self.y0, self.nx, self.ny = x0, y0, nx, ny

    def run(self):
        """grid (fine cells, ny x nx): LocationID > 0, 0 for no zone, -(k + 1) for the k-th
        grid cell a border crosses; children[level]: four values per crossed cell of the
        level above, in the same coding; then the crossed leaves' candidate pieces:
        candidates[offsets[k]:offsets[k + 1]] index pieces/piece_ids.

        Level by level, each cell to classify carries (cell, zone) candidate pairs: the
        zones that can reach it (its parent's candidates; at the coarsest level, the zones
        whose bounding box meets it). A zone whose border crosses the cell (a border
        segment intersects the box) stays a candidate; any other candidate either holds
        the whole cell or none of it, which its centre tells. A cell no border crosses is
        done; the others are cut in four for the next level.
        """
        segments, self.segment_zone = _border_segments(self.polygons)
        # The same edge of two zones (a shared border) is one canonical segment.
        ends = shapely.get_coordinates(segments).reshape(-1, 4)
        swap = (ends[:, 0] > ends[:, 2]) | ((ends[:, 0] == ends[:, 2]) & (ends[:, 1] > ends[:, 3]))
        ends[swap] = ends[swap][:, [2, 3, 0, 1]]
        self.canon_ends, self.segment_canon = np.unique(ends, axis=0, return_inverse=True)
        self.segment_canon = self.segment_canon.ravel()
        self.segment_tree = shapely.STRtree(segments)
        size = COARSE_CELL_DEG
        shift = GRID_LEVELS - 1
        ny, nx = self.ny >> shift, self.nx >> shift
        iy, ix = (a.ravel() for a in np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij"))
        grid = np.zeros((ny, nx), dtype=np.int32)
        cell, zone = shapely.STRtree(self.polygons).query(self._boxes(iy, ix, size))  # bounding boxes meet
        children = []
        for level in range(LEVELS):
            if level:
                if level < GRID_LEVELS:
                    grid = grid.repeat(2, axis=0).repeat(2, axis=1)
                size /= 2
                # Children of the k-th crossed cell are cells 4k..4k+3 (quadrant 2 * dy + dx).
                iy = (iy[:, None] * 2 + np.array([0, 0, 1, 1])).ravel()
                ix = (ix[:, None] * 2 + np.array([0, 1, 0, 1])).ravel()
                cell, zone = (cell[:, None] * 4 + np.arange(4)).ravel(), zone.repeat(4)
            if level == GRID_LEVELS - 1:
                # The grid's crossed cells numbered in row-major order (see _block_coded).
                order = np.argsort(iy.astype(np.int64) * self.nx + ix, kind="stable")
                iy, ix = iy[order], ix[order]
                cell = np.argsort(order)[cell]
            value, crossed, keep = self._classify(iy, ix, size, cell, zone)
            coded = np.where(crossed, -(np.cumsum(crossed, dtype=np.int32)), value)
            if level < GRID_LEVELS:
                grid[iy, ix] = coded
            else:
                children.append(coded)
            # Candidates of the crossed cells, renumbered in the order of the crossed cells.
            renumber = np.cumsum(crossed) - 1
            cell, zone = renumber[cell[keep]], zone[keep]
            iy, ix = iy[crossed], ix[crossed]
        line, lines = self._lines(iy, ix, cell, zone)
        # The exact leaves' candidates, renumbered among the exact leaves.
        exact = ~line
        renumber = np.cumsum(exact) - 1
        keep = exact[cell]
        return (grid, children, line, lines, *self._pieces(iy[exact], ix[exact], renumber[cell[keep]], zone[keep]))

    def _lines(self, iy, ix, cell, zone):
        """Line leaves: crossed leaves whose border, within 1 cm of the leaf, is one straight
        segment or two segments meeting at a vertex (a corner), the same for each of the
        leaf's zones (one zone, or two sharing that border) and no other zone. Their points
        are decided by the side of that border (see ZoneIndex._side): the IDs on each side
        are those of two probes 1e-9 degrees either side of the first segment's middle in
        the leaf, tested exactly here; on the border, the smaller ID (or the one zone).
        Returns whether each leaf is a line leaf, and (line_of_leaf per line leaf and its
        block bases (_windowed), then per border: line_xy its vertex x, y, line_dir its two
        directions (float32), line_ids the IDs left, right, on it and whether it turns left)."""
        n = len(iy)
        size = LEAF_CELL_DEG
        found_leaf, found_segment = [], []
        for first in range(0, n, CHUNK_CELLS):
            boxes = _boxes(ix[first : first + CHUNK_CELLS], iy[first : first + CHUNK_CELLS], size, self)
            leaf, segment = self.segment_tree.query(boxes, predicate="intersects")
            found_leaf.append(leaf + first)
            found_segment.append(segment)
        leaf, segment = np.concatenate(found_leaf), np.concatenate(found_segment)
        canon, zone_of = self.segment_canon[segment], self.segment_zone[segment]
        order = np.lexsort((zone_of, canon, leaf))
        leaf, canon, zone_of = leaf[order], canon[order], zone_of[order]
        new_canon = np.diff(leaf, prepend=-1) != 0
        new_canon |= np.diff(canon, prepend=-1) != 0
        repeated = ~new_canon & (np.diff(zone_of, prepend=-1) == 0)  # a zone with the same edge twice
        distinct = np.bincount(leaf[new_canon], minlength=n)
        segments = np.bincount(leaf, minlength=n)
        zones = np.bincount(cell, minlength=n)
        line = (distinct >= 1) & (distinct <= 2) & (zones <= 2) & (segments == distinct * zones)
        line &= np.bincount(leaf[repeated], minlength=n) == 0
        # Every zone of the segments is a candidate (and so, with the counts, the only ones).
        zcount = len(self.polygons)
        member = _member(leaf.astype(np.int64) * zcount + zone_of, cell.astype(np.int64) * zcount + zone)
        line &= np.bincount(leaf, weights=member, minlength=n) == segments
        # The leaf's first and last canonical segment (the same one when straight).
        starts = np.flatnonzero(new_canon)
        first_canon = np.zeros(n, dtype=np.int64)
        last_canon = np.zeros(n, dtype=np.int64)
        first_canon[leaf[starts[::-1]]] = canon[starts[::-1]]
        last_canon[leaf[starts]] = canon[starts]
        k = np.flatnonzero(line)
        one, two = self.canon_ends[first_canon[k]], self.canon_ends[last_canon[k]]
        straight = first_canon[k] == last_canon[k]
        # The corner: the common end V of the two; the border runs P -> V -> Q.
        same = [np.all(one[:, 2 * i : 2 * i + 2] == two[:, 2 * j : 2 * j + 2], axis=1) for i in (0, 1) for j in (0, 1)]
        ok = straight | np.any(same, axis=0)
        i_v = np.where(same[0] | same[1], 0, 1)  # V's end in `one`
        j_v = np.where(same[0] | same[2], 0, 1)  # V's end in `two`
        rows = np.arange(len(k))
        p = np.where(straight[:, None], one[:, 0:2], one.reshape(-1, 2, 2)[rows, 1 - i_v])
        v = np.where(straight[:, None], one[:, 2:4], one.reshape(-1, 2, 2)[rows, i_v])
        q = np.where(straight[:, None], one[:, 2:4], two.reshape(-1, 2, 2)[rows, 1 - j_v])
        d1, d2 = v - p, q - v
        d2 = np.where(straight[:, None], d1, d2)
        # Stored as float32 (see ZoneIndex._set): the probes below are judged with those.
        d1, d2 = d1.astype(np.float32).astype(np.float64), d2.astype(np.float32).astype(np.float64)
        turn = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        ok &= (turn != 0) | (np.sum(d1 * d2, axis=1) > 0)  # no 180-degree spike
        turns_left = turn >= 0
        # Probes either side of the middle of P -> V's part in the leaf.
        clipped = shapely.intersection(shapely.linestrings(np.stack([p, v], axis=1)), self._boxes(iy[k], ix[k], size))
        ok &= shapely.length(clipped) > 1e-7  # else the leaf holds too little of it
        clipped[~ok] = shapely.linestrings([[0.0, 0.0], [1.0, 1.0]])
        middle = shapely.line_interpolate_point(clipped, 0.5, normalized=True)
        middle = np.column_stack([shapely.get_x(middle), shapely.get_y(middle)])
        norm = np.hypot(d1[:, 0], d1[:, 1])
        probe = {}
        pairs = np.flatnonzero(line[cell])
        at = np.searchsorted(k, cell[pairs])
        for name, sign in (("left", 1.0), ("right", -1.0)):
            px = middle[:, 0] - sign * 1e-9 * d1[:, 1] / norm
            py = middle[:, 1] + sign * 1e-9 * d1[:, 0] / norm
            # The probe must be on its side of the whole border, by the rule _side applies.
            ok &= _sides(px - v[:, 0], py - v[:, 1], d1, d2, turns_left) == (0 if sign > 0 else 1)
            hit = shapely.intersects_xy(self.polygons[zone[pairs]], px[at], py[at])
            value = np.full(len(k), np.iinfo(np.int32).max, dtype=np.int64)
            np.minimum.at(value, at[hit], self.location_ids[zone[pairs[hit]]])
            value[value == np.iinfo(np.int32).max] = 0
            probe[name] = value
        left, right = probe["left"], probe["right"]
        ok &= left != right
        line[k[~ok]] = False
        on = np.where(left == 0, right, np.where(right == 0, left, np.minimum(left, right)))
        xy = np.column_stack([v, d1, d2])[ok]
        ids = np.column_stack([left, right, on, turns_left]).astype(np.uint16)[ok]
        # One row per distinct border and IDs: the leaves along a border share it.
        _, first, line_of_leaf = np.unique(np.column_stack([xy, ids]), axis=0, return_index=True, return_inverse=True)
        # Numbered in the order the leaves first use them: a block of leaves then uses a
        # narrow range of lines (see _windowed).
        line_of_leaf = line_of_leaf.ravel()
        seen = np.full(len(first), len(line_of_leaf))
        np.minimum.at(seen, line_of_leaf, np.arange(len(line_of_leaf)))
        order = np.argsort(seen, kind="stable")
        line_of_leaf = np.argsort(order)[line_of_leaf]
        xy, ids = xy[first[order]], ids[first[order]]
        return line, (*_windowed(line_of_leaf), xy[:, :2].copy(), xy[:, 2:].astype(np.float32), ids)

    def _classify(self, iy, ix, size, cell, zone):
        """Per cell: the LocationID that holds it whole (0: none) and whether a border
        crosses it; per (cell, zone) pair: whether the zone stays a candidate of a crossed
        cell. In chunks of cells, so the shapely boxes stay few at the fine levels."""
        n = len(iy)
        zones = len(self.polygons)
        crossed = np.zeros(n, dtype=bool)
        hits = []
        for first in range(0, n, CHUNK_CELLS):
            boxes = self._boxes(iy[first : first + CHUNK_CELLS], ix[first : first + CHUNK_CELLS], size)
            hit_cell, hit_segment = self.segment_tree.query(boxes, predicate="intersects")
            hits.append((hit_cell.astype(np.int64) + first) * zones + self.segment_zone[hit_segment])
        crosses = _member(cell.astype(np.int64) * zones + zone, np.concatenate(hits))
        centre_x = self.x0 + (ix[cell] + 0.5) * size
        centre_y = self.y0 + (iy[cell] + 0.5) * size
        holds = ~crosses
        # intersects_xy, not contains_xy: a point on a border is in both zones.
        holds[holds] = shapely.intersects_xy(self.polygons[zone[holds]], centre_x[holds], centre_y[holds])
        crossed[cell[crosses]] = True
        value = np.full(n, np.iinfo(np.int32).max, dtype=np.int32)
        np.minimum.at(value, cell[holds], self.location_ids[zone[holds]])
        value[value == np.iinfo(np.int32).max] = 0
        keep = (crosses | holds) & crossed[cell]
        return value, crossed, keep

    def _pieces(self, iy, ix, cell, zone):
        """Candidates of the crossed leaves in ascending LocationID (see ZoneIndex._exact),
        as pieces: each zone clipped to a cell of PIECE_LEVEL around the leaf, a handful of
        vertices instead of hundreds, several times faster per test."""
        order = np.lexsort((self.location_ids[zone], cell))
        cell, zone = cell[order], zone[order]
        offsets = np.searchsorted(cell, np.arange(len(iy) + 1)).astype(np.int64)
        shift = LEVELS - 1 - PIECE_LEVEL
        size = COARSE_CELL_DEG / 2**PIECE_LEVEL
        py, px = iy[cell] >> shift, ix[cell] >> shift
        zones = len(self.polygons)
        key = (py.astype(np.int64) * (self.nx << SUB_LEVELS) + px) * zones + zone
        keys, first, piece = np.unique(key, return_index=True, return_inverse=True)
        zone_of_piece = (keys % zones).astype(np.int32)
        # Clipped in two steps (cells 8 times larger first): clipping a whole zone of ~1,700
        # vertices is what costs, and it is then done for fewer cells.
        big_px, big_py = px[first] >> 3, py[first] >> 3
        big_key = (big_py.astype(np.int64) * (self.nx << SUB_LEVELS) + big_px) * zones + zone_of_piece
        _, big_first, big = np.unique(big_key, return_index=True, return_inverse=True)
        big_pieces = shapely.intersection(
            self.polygons[zone_of_piece[big_first]], _boxes(big_px[big_first], big_py[big_first], size * 8, self)
        )
        pieces = shapely.intersection(big_pieces[big.ravel()], _boxes(px[first], py[first], size, self))
        return piece.astype(np.int32), offsets, pieces, self.location_ids[zone_of_piece]

    def _boxes(self, iy: np.ndarray, ix: np.ndarray, size: float) -> np.ndarray:
        x, y = self.x0 + ix * size, self.y0 + iy * size
        return shapely.box(x, y, x + size, y + size)


def _boxes(ix: np.ndarray, iy: np.ndarray, size: float, grid) -> np.ndarray:
    """Cells of `size` at indexes ix, iy of `grid`'s origin, 1e-7 degrees (about 1 cm)
    larger all round: points on a cell's own edge stay inside."""
    x, y = grid.x0 + ix * size, grid.y0 + iy * size
    margin = 1e-7
    return shapely.box(x - margin, y - margin, x + size + margin, y + size + margin)


def _cell_index(values: np.ndarray, start: float, cell_deg: float, offset: int) -> np.ndarray:
    """int32 index of the cell of `cell_deg` of each value from `start`, plus `offset`. In
    place after the first pass: the lookup is memory-bound. The grid's and the leaves'
    indexes agree exactly (a leaf's >> SUB_LEVELS is its grid cell): their scales and
    offsets differ by a power of two, which scales every rounding step exactly."""
    scaled = values - start
    scaled *= 1.0 / cell_deg
    scaled += float(offset)
    with np.errstate(invalid="ignore"):
        return scaled.astype(np.int32)


def _stepped(levels: list[np.ndarray]) -> list[np.ndarray]:
    """The quadtree levels (int32 codes, four per crossed cell of the level above) as the
    passes of STEPS: a pass of two levels holds the 16 grandchildren of each crossed cell
    (quadrant of the first level high, of the second low), a child's value repeated four
    times where no border crosses it. The crossed cells keep their array order, so the
    codes of the next level still point at them."""
    out = []
    levels = list(levels)
    for step in STEPS:
        merged = levels.pop(0)
        for _ in range(step - 1):
            lower = levels.pop(0).reshape(-1, 4)
            grown = np.repeat(merged, 4).reshape(-1, 4)
            crossed = merged < 0
            grown[crossed] = lower[-merged[crossed] - 1]
            merged = grown.ravel()
        out.append(merged)
    if levels or sum(STEPS) != SUB_LEVELS:
        raise AssertionError("STEPS must add up to SUB_LEVELS")
    return out


def _block_coded(coded: np.ndarray, line: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int32 values (LocationID, 0, or -(k + 1) for the k-th crossed cell, k in array
    order) -> uint16 values and the block bases of the crossed cells that are not line
    leaves and of those that are (`line[k]`; see MARK)."""
    crossed = np.flatnonzero(coded < 0)
    rank = -coded[crossed] - 1
    if not np.array_equal(rank, np.arange(len(crossed))):
        raise AssertionError("crossed cells must be numbered in array order")
    kind = np.zeros(len(crossed), dtype=bool) if line is None else line[rank]
    out = coded.astype(np.uint16)
    bases = []
    for is_line in (False, True):
        at = crossed[kind == is_line]
        base = np.searchsorted(at, np.arange(0, len(coded), BLOCK)).astype(np.int32)
        out[at] = MARK + is_line * BLOCK + (np.arange(len(at)) - base[at >> BLOCK_SHIFT])
        bases.append(base)
    return out, bases[0], bases[1]


_HELPER: list[ThreadPoolExecutor] = []


def _helper() -> ThreadPoolExecutor:
    """The one thread that locates every other chunk of large arrays (made at first use)."""
    if not _HELPER:
        _HELPER.append(ThreadPoolExecutor(1, thread_name_prefix="zone-locate"))
    return _HELPER[0]


def _sides(dx: np.ndarray, dy: np.ndarray, d1: np.ndarray, d2: np.ndarray, turns_left: np.ndarray) -> np.ndarray:
    """0 left, 1 right, 2 on a border through the origin with directions d1 (coming in)
    and d2 (going out): left of both lines where it turns left (the left side is the
    narrow wedge), left of either where it turns right. Plain float64 arithmetic: exact
    at the border's vertex, off by far less than 1 cm elsewhere."""
    one = d1[:, 0] * dy
    one -= d1[:, 1] * dx
    two = d2[:, 0] * dy
    two -= d2[:, 1] * dx
    left = np.where(turns_left, (one > 0) & (two > 0), (one > 0) | (two > 0))
    right = np.where(turns_left, (one < 0) | (two < 0), (one < 0) & (two < 0))
    return np.where(left, 0, np.where(right, 1, 2))


def _windowed(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative values -> (offsets, bases): value i = bases[i >> BLOCK_SHIFT] + offsets[i];
    offsets uint16 when each block's values span less than 2**16 (else uint32, bases 0)."""
    starts = np.arange(0, len(values), BLOCK)
    base = np.minimum.reduceat(values, starts).astype(np.int64) if len(values) else np.zeros(0, dtype=np.int64)
    offset = values - np.repeat(base, BLOCK)[: len(values)]
    if offset.max(initial=0) < 1 << 16:
        return offset.astype(np.uint16), base
    return values.astype(np.uint32), np.zeros(len(starts), dtype=np.int64)


def _rank(base: np.ndarray, position: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Rank (int32) of crossed cells at `position` holding `value` (>= MARK)."""
    rank = base.take(position >> BLOCK_SHIFT)
    rank += value
    rank -= MARK
    return rank


def _wkb_objects(pieces: np.ndarray) -> np.ndarray:
    """GEOS geometries -> an object array of their WKB bytes."""
    out = np.empty(len(pieces), dtype=object)
    out[:] = list(shapely.to_wkb(pieces))
    return out


def _member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """np.isin by sort and binary search (numpy's hash-based unique is the slower here)."""
    pool = np.sort(pool)
    if not len(pool):
        return np.zeros(len(values), dtype=bool)
    return pool[np.searchsorted(pool, values).clip(max=len(pool) - 1)] == values


def _compact(values: np.ndarray) -> np.ndarray:
    """The smallest unsigned integer type that holds non-negative `values`."""
    return values.astype(np.min_scalar_type(max(int(values.max(initial=0)), 0)))


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


def _floats(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 numpy values (a view of the Arrow buffer when it is one chunk) and their
    validity (None: no nulls). From the buffers: no pandas import, see convert.py."""
    if isinstance(values, pa.ChunkedArray):
        values = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    if values.type != pa.float64():
        raise TypeError(f"coordinates must be float64, got {values.type}")
    validity, data = values.buffers()
    out = np.frombuffer(data, dtype=np.float64, count=values.offset + len(values))[values.offset :]
    if not values.null_count:
        return out, None
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=values.offset + len(values),
                         bitorder="little")[values.offset :]  # fmt: skip
    return out, bits.astype(bool)
