"""The Dagster definitions: `dagster dev` (workspace.yaml) loads `defs` from here."""

import dagster as dg

from taxi_assets.defs.assets import build_all_assets
from taxi_assets.defs.assets.marts import build_automation_sensor
from taxi_assets.defs.jobs import build_month_jobs
from taxi_assets.defs.resources import build_resources, warehouse_uri
from taxi_assets.defs.schedules import build_schedules
from taxi_assets.defs.sensors import build_source_sensors
from taxi_assets.storage.warehouse import warehouse_kind


def build_definitions() -> dg.Definitions:
    assets = build_all_assets(warehouse_kind(warehouse_uri()))
    return dg.Definitions(
        assets=assets,
        jobs=build_month_jobs(),
        schedules=build_schedules(),
        sensors=[*build_source_sensors(), build_automation_sensor()],
        resources=build_resources(),
        # A run is a chain (raw -> lake -> checks -> warehouse of a month or a range):
        # its steps run one after another anyway, so a process per step would only add
        # start-up time. Runs go in parallel through the run queue (deploy/dagster.yaml).
        executor=dg.in_process_executor,
    )


defs = build_definitions()
