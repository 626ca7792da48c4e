"""The Dagster definitions: `dagster dev` (workspace.yaml) loads `defs` from here."""

import dagster as dg

from taxi_assets.defs.assets import build_all_assets
from taxi_assets.defs.resources import build_resources, warehouse_uri
from taxi_assets.storage.warehouse import warehouse_kind


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=build_all_assets(warehouse_kind(warehouse_uri())),
        resources=build_resources(),
    )


defs = build_definitions()
