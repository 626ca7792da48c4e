"""What a month of a mart records in its materialization: its figures (plotted across
partitions in the UI) and, for trips_by_zone, a map of the month's pickups by zone drawn
from the lake's zone shapes (geo/choropleth.py), inline as Markdown."""

from __future__ import annotations

import base64
import logging
from typing import Any

import dagster as dg

from taxi_assets.geo.shapes import read_shapes_parquet
from taxi_assets.spec.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.spec.months import normalize_month
from taxi_assets.storage.io_manager import LakeIOManager, published
from taxi_assets.storage.warehouse import Warehouse

MAP_METADATA_KEY = "pickup_map"


def month_figures(warehouse: Warehouse, month: str, table: str) -> dict[str, Any]:
    """The figures of a mart's month (`table`: the mart's name) that the UI plots across partitions."""
    where = f"WHERE {SOURCE_MONTH_COLUMN} = DATE '{normalize_month(month)}-01'"
    if table == "monthly_zone_revenue":
        (row,) = warehouse.query(
            f"SELECT COUNT(*) AS n, SUM(total_monthly_trips) AS trips, SUM(revenue_monthly_total_amount) AS total "
            f"FROM {warehouse.table_ref(table)} {where}"
        ).to_pylist()
        return {
            "dagster/row_count": int(row["n"]),
            "total_trips": int(row["trips"] or 0),
            "total_revenue": round(row["total"] or 0.0, 2),
        }
    if table != "trips_by_zone":
        return {}
    totals = warehouse.query(
        f"SELECT dataset, SUM(trips) AS trips, SUM(revenue) AS revenue, COUNT(*) AS zone_rows, "
        f"SUM(CASE WHEN pickup_zone IS NULL THEN trips ELSE 0 END) AS unknown_zone_trips "
        f"FROM {warehouse.table_ref(table)} {where} GROUP BY dataset"
    ).to_pylist()
    by_dataset = {row["dataset"]: row for row in totals}
    figures: dict[str, Any] = {
        "dagster/row_count": sum(int(r["zone_rows"]) for r in totals),
        "total_trips": sum(int(r["trips"]) for r in totals),
        "total_revenue": round(sum(r["revenue"] or 0.0 for r in totals), 2),
        "unknown_zone_trips": sum(int(r["unknown_zone_trips"]) for r in totals),
    }
    for spec in DATASETS.values():
        row = by_dataset.get(spec.name, {})
        figures[f"trips_{spec.name}"] = int(row.get("trips") or 0)
        if spec.amount_column:
            figures[f"revenue_{spec.name}"] = round(row.get("revenue") or 0.0, 2)
    return figures


def pickups_by_zone_sql(table: str, month: str) -> str:
    """Pickups per (borough, zone) of one month of the mart (`table` as the warehouse names it)."""
    return (
        f"SELECT pickup_borough, pickup_zone, SUM(trips) AS trips FROM {table} "
        f"WHERE source_month = DATE '{normalize_month(month)}-01' GROUP BY pickup_borough, pickup_zone"
    )


class PickupMaps:
    """Draws the months of a run; reads the zone shapes from the lake once."""

    def __init__(self, lake_io_manager: LakeIOManager, shapes_key: dg.AssetKey, log: logging.Logger):
        self.lake_io_manager, self.shapes_key, self.log = lake_io_manager, shapes_key, log
        self._shapes = None

    def shapes(self):
        if self._shapes is None:
            obj = published(self.lake_io_manager.store(), self.shapes_key, None)
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
