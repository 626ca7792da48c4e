"""Materialize one month of one dataset (raw -> lake -> warehouse) in this process,
with the product's resources built from the environment (TAXI_* variables).

The crash and concurrency tests run this as a subprocess they can kill or race:
    python -m taxi_assets_tests.materialize_month yellow 2021-01
"""

import sys

import dagster as dg

from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.resources import build_resources, load_settings
from taxi_assets.spec.datasets import get_spec
from taxi_assets.spec.months import partition_key


def main(dataset: str, month: str) -> int:
    result = dg.materialize(
        build_dataset_assets(get_spec(dataset), load_settings().warehouse_kind),
        partition_key=partition_key(month),
        resources=build_resources(),
        raise_on_error=False,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
