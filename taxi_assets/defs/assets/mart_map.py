"""The map of a month of `mart/trips_by_zone`: pickups by zone as a choropleth PNG, put in
the month's materialization metadata as Markdown with the image inline (a data: URI),
which the Dagster UI renders on the asset's page.

Kept apart from the mart's own code so that it moves as it is when the mart is built
another way: it needs only the mart table's name in the warehouse,
the month, the warehouse's query method and the lake's zone shapes.
"""

from __future__ import annotations

import base64
import logging

import dagster as dg

from taxi_assets.defs.assets.keys import shapes_key
from taxi_assets.geo.shapes import read_shapes_parquet
from taxi_assets.spec.months import normalize_month
from taxi_assets.storage.io_manager import LakeIOManager, published
from taxi_assets.storage.warehouse import Warehouse

MAP_METADATA_KEY = "pickup_map"


def pickups_by_zone_sql(table: str, month: str) -> str:
    """Pickups per (borough, zone) of one month of the mart (`table` as the warehouse names it)."""
    return (
        f"SELECT pickup_borough, pickup_zone, SUM(trips) AS trips FROM {table} "
        f"WHERE source_month = DATE '{normalize_month(month)}-01' GROUP BY pickup_borough, pickup_zone"
    )


class PickupMaps:
    """Draws the months of a run; reads the zone shapes from the lake once."""

    def __init__(self, lake_io_manager: LakeIOManager, log: logging.Logger):
        self.lake_io_manager, self.log = lake_io_manager, log
        self._shapes = None

    def shapes(self):
        if self._shapes is None:
            obj = published(self.lake_io_manager.store(), shapes_key("lake"), None)
            with obj.local_path() as path:
                self._shapes = read_shapes_parquet(path)
        return self._shapes

    def metadata(self, warehouse: Warehouse, table: str, month: str) -> dict:
        """{pickup_map: Markdown with the PNG}; without the shapes in the lake, a note saying so."""
        month = normalize_month(month)
        try:
            shapes = self.shapes()
        except FileNotFoundError as exc:
            self.log.warning(f"no pickup map for {month}: {exc}")
            return {MAP_METADATA_KEY: dg.MetadataValue.md(f"No map: {exc}")}
        rows = warehouse.query(pickups_by_zone_sql(table, month)).to_pylist()
        values = {(r["pickup_borough"], r["pickup_zone"]): r["trips"] for r in rows if r["pickup_zone"]}
        total = sum(r["trips"] or 0 for r in rows)
        located = sum(values.values())
        from taxi_assets.geo.choropleth import render_choropleth  # matplotlib: only in the step that draws

        png = render_choropleth(shapes, values, f"Pickups by taxi zone, {month}", "pickups (all datasets)")
        image = base64.b64encode(png).decode()
        text = (
            f"![Pickups by taxi zone, {month}](data:image/png;base64,{image})\n\n"
            f"{located:,} of {total:,} pickups in a zone; darker = fewer (log scale), grey = none."
        )
        return {MAP_METADATA_KEY: dg.MetadataValue.md(text)}
