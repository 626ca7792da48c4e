"""The Dagster definitions: `dagster dev` (workspace.yaml) loads `defs` from here."""

import dagster as dg

from taxi_assets.defs.assets import build_all_assets
from taxi_assets.defs.resources import build_resources, warehouse_uri
from taxi_assets.storage.warehouse import warehouse_kind


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=build_all_assets(warehouse_kind(warehouse_uri())),
        resources=build_resources(),
        # A run is a chain (a month's raw -> lake -> warehouse, or one warehouse load):
        # its steps run one after another anyway, so a process per step would only add
        # start-up time. Runs go in parallel through the run queue (deploy/dagster.yaml).
        executor=dg.in_process_executor,
    )


defs = build_definitions()
