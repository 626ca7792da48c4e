"""A choropleth of a figure by taxi zone (e.g. a month's pickups), drawn with matplotlib
from the lake's zone shapes, as PNG bytes.

Zones are matched by (borough, zone name), the columns the marts carry: zones that
share a name (56/57 Corona, 103/104/105 the islands) get the same value. Colours are on
a log scale (a busy Midtown zone has thousands of times the trips of a quiet one); zones
with no value are light grey.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import shapely  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from taxi_assets.geo.shapes import geometries  # noqa: E402

NO_VALUE_COLOUR = "#e6e6e6"


def _path(geometry) -> MplPath:
    """A matplotlib path of a (multi)polygon, holes included."""
    vertices, codes = [], []
    for polygon in shapely.get_parts(geometry):
        for ring in [polygon.exterior, *polygon.interiors]:
            coords = np.asarray(ring.coords)
            vertices.append(coords)
            codes.append([MplPath.MOVETO] + [MplPath.LINETO] * (len(coords) - 2) + [MplPath.CLOSEPOLY])
    return MplPath(np.concatenate(vertices), np.concatenate(codes))


def render_choropleth(
    shapes: pa.Table, values: Mapping[tuple[str, str], float], title: str, label: str, dpi: int = 80
) -> bytes:
    """PNG of `values` by (borough, zone) over the zones of `shapes` (taxi_assets.geo.shapes)."""
    polygons = geometries(shapes)
    keys = list(zip(shapes.column("borough").to_pylist(), shapes.column("zone").to_pylist()))
    zone_values = np.array([values.get(k, 0) or 0 for k in keys], dtype=float)
    positive = zone_values[zone_values > 0]
    figure, axes = plt.subplots(figsize=(7.5, 7.5), dpi=dpi)
    try:
        patches = PatchCollection([PathPatch(_path(g)) for g in polygons], edgecolor="white", linewidth=0.2)
        if len(positive):
            norm = LogNorm(vmin=max(positive.min(), 1), vmax=max(positive.max(), 2))
            patches.set_array(np.ma.masked_less_equal(zone_values, 0))
            patches.set_cmap(plt.get_cmap("viridis").with_extremes(bad=NO_VALUE_COLOUR))
            patches.set_norm(norm)
            figure.colorbar(patches, ax=axes, shrink=0.7, label=label)
        else:
            patches.set_facecolor(NO_VALUE_COLOUR)
        axes.add_collection(patches)
        x0, y0, x1, y1 = shapely.total_bounds(polygons)
        axes.set_xlim(x0, x1)
        axes.set_ylim(y0, y1)
        # Degrees of longitude are shorter than degrees of latitude at New York's latitude.
        axes.set_aspect(1 / math.cos(math.radians((y0 + y1) / 2)))
        axes.set_axis_off()
        axes.set_title(title)
        out = io.BytesIO()
        figure.savefig(out, format="png", bbox_inches="tight")
        return out.getvalue()
    finally:
        plt.close(figure)
