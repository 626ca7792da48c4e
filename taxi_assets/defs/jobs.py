"""One job per dataset: raw -> lake -> warehouse (with the lake checks) for a month or a range.

The sensors and the schedule launch these, so their runs are named after the dataset.
"""

from functools import cache

import dagster as dg

from taxi_assets.defs.assets.keys import lake_key, raw_key, warehouse_key
from taxi_assets.spec.datasets import DATASETS, get_spec

# Run tag saying what launched a month run: new_month, republished, gcs_drop, schedule.
TRIGGER_TAG = "taxi/trigger"


@cache
def month_job(dataset: str):  # an unresolved asset job: Definitions resolves it
    spec = get_spec(dataset)
    return dg.define_asset_job(
        name=f"{spec.name}_month_job",
        # Selecting the assets selects their checks too: the lake checks gate the warehouse.
        selection=dg.AssetSelection.assets(raw_key(spec), lake_key(spec), warehouse_key(spec)),
        description=f"{spec.name}: fetch, convert and load the month(s) into {spec.table}.",
    )


@dg.definitions
def jobs() -> dg.Definitions:
    return dg.Definitions(
        jobs=[month_job(name) for name in DATASETS],
        # A run is a chain (raw -> lake -> checks -> warehouse of a month or a range):
        # its steps run one after another anyway, so a process per step would only add
        # start-up time. Runs go in parallel through the run queue (deploy/dagster.yaml).
        executor=dg.in_process_executor,
    )
