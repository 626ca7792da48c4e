"""The sensors: new and re-published months at the source (per dataset), files in the GCS drop zone."""

import dagster as dg

from taxi_assets.datasets import DATASETS
from taxi_assets.defs.sensors.gcs_drop import build_gcs_drop_sensor
from taxi_assets.defs.sensors.new_months import build_new_month_sensor
from taxi_assets.defs.sensors.republished import build_republished_sensor


def build_source_sensors() -> list[dg.SensorDefinition]:
    per_dataset = [
        sensor
        for spec in DATASETS.values()
        for sensor in (build_new_month_sensor(spec), build_republished_sensor(spec))
    ]
    return [*per_dataset, build_gcs_drop_sensor()]
