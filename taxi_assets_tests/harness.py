"""What tests share (import from here, not from conftest.py): the test data, the months the
mirror serves, and `Platform`, one isolated install of the product under a temporary folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from taxi_assets.datasets import DatasetSpec
from taxi_assets.definitions import load_definitions
from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.resources import warehouse_resource
from taxi_assets.months import partition_key
from taxi_assets.source.resource import DEFAULT_ZONES_URL, TaxiSource
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.lake import LocalLakeStore

TEST_DATA = Path(__file__).parent / "data"
MONTHS = ["2021-01", "2021-02"]


@dataclass
class Platform:
    """One isolated install of the product: a lake folder and a DuckDB file under tmp."""

    root: Path
    source_url: str
    zones_url: str = DEFAULT_ZONES_URL

    @property
    def lake_uri(self) -> str:
        return str(self.root / "lake")

    @property
    def warehouse_uri(self) -> str:
        return f"duckdb:///{self.root / 'warehouse.duckdb'}"

    def resources(self) -> dict:
        return {
            "source": TaxiSource(url_template=self.source_url, zones_url=self.zones_url, backoff_s=0.01),
            "lake_io_manager": LakeIOManager(lake_uri=self.lake_uri),
            "warehouse": warehouse_resource(self.warehouse_uri),
        }

    def lake(self) -> LocalLakeStore:
        return LocalLakeStore(self.lake_uri)

    def warehouse(self):
        return warehouse_resource(self.warehouse_uri)

    def materialize(self, spec: DatasetSpec, month: str, **kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            build_dataset_assets(spec, "duckdb"),
            partition_key=partition_key(month),
            resources=self.resources(),
            **kwargs,
        )

    def materialize_selection(self, selection: str, month: str | None = None, **kwargs):
        """Materialize the assets `selection` (Dagster selection syntax) picks from the whole graph."""
        return dg.materialize(
            all_assets(),
            selection=selection,
            partition_key=partition_key(month) if month else None,
            resources=self.resources(),
            **kwargs,
        )


def all_assets() -> list:
    """Every asset of the project's definitions, as they load from the environment (DuckDB on
    the defaults); the resources come with each test."""
    return list(load_definitions().assets or [])
