"""What tests share (import from here, not from conftest.py): the test data, the months the
mirror serves, and `Platform`, one isolated install of the product under a temporary folder."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from taxi_assets.analytics.runner import dbt_resource
from taxi_assets.definitions import load_definitions
from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.resources import warehouse_resource
from taxi_assets.geo.locate import ZoneIndex
from taxi_assets.geo.shapes import SHAPES_TABLE, read_shapefile_zip, write_shapes_parquet
from taxi_assets.geo.stored import CACHE_ENV, INDEX_FILE_NAME, ZoneIndexResource, write_index
from taxi_assets.source.resource import DEFAULT_ZONE_SHAPES_URL, DEFAULT_ZONES_URL, TaxiSource
from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.io_manager import LakeIOManager
from taxi_assets.storage.lake import LocalLakeStore
from taxi_assets.transform.reader import era_columns

TEST_DATA = Path(__file__).parent / "data"
MONTHS = ["2021-01", "2021-02"]


def month_has_coordinates(spec: DatasetSpec, month: str) -> bool:
    """Whether an era of the month (CSV or Parquet) publishes coordinates."""
    eras = [spec.era(month, fmt) for fmt in ("csv", "parquet")]
    return any(era and "pickup_longitude" in era_columns(spec, era) for era in eras)


@functools.lru_cache(maxsize=1)
def lake_shapes_files() -> dict[str, bytes]:
    """The lake's GeoParquet of the test data's shapefile and its stored zone index, as
    `lake/taxi_zone_shapes_lake` writes them: once per process, the index from the session's
    TAXI_ZONE_INDEX_CACHE (conftest.py; built there once, ~50 s of CPU, then loaded)."""
    staged = Path(tempfile.mkdtemp()) / "part-0.parquet"
    write_shapes_parquet(read_shapefile_zip(TEST_DATA / "taxi_zones.zip", "taxi_zones.zip"), staged)
    write_index(staged, staged.with_name(INDEX_FILE_NAME), os.environ.get(CACHE_ENV))
    files = {p.name: p.read_bytes() for p in staged.parent.iterdir()}
    shutil.rmtree(staged.parent)
    return files


def stored_zone_index() -> ZoneIndex:
    """The zone index of the test data's shapes, loaded from the stored file (built once
    per session by lake_shapes_files: a build is ~50 s of CPU)."""
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / INDEX_FILE_NAME).write_bytes(lake_shapes_files()[INDEX_FILE_NAME])
        return ZoneIndex.load(folder / INDEX_FILE_NAME)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Platform:
    """One isolated install of the product: a lake folder and a DuckDB file under tmp."""

    root: Path
    source_url: str
    zones_url: str = DEFAULT_ZONES_URL
    zone_shapes_url: str = DEFAULT_ZONE_SHAPES_URL

    @property
    def lake_uri(self) -> str:
        return str(self.root / "lake")

    @property
    def warehouse_uri(self) -> str:
        return f"duckdb:///{self.root / 'warehouse.duckdb'}"

    def resources(self) -> dict:
        """The resources as defs/resources.py builds them, the environment read now: the staging
        folder (TAXI_STAGING_DIR, a test's own or the session's) and the session's zone index cache."""
        return {
            "source": TaxiSource(
                url_template=self.source_url,
                zones_url=self.zones_url,
                zone_shapes_url=self.zone_shapes_url,
                backoff_s=0.01,
            ),
            "lake_io_manager": LakeIOManager(lake_uri=self.lake_uri, staging_dir=os.environ["TAXI_STAGING_DIR"]),
            "zone_index": ZoneIndexResource(cache_dir=os.environ.get(CACHE_ENV)),
            "warehouse": warehouse_resource(self.warehouse_uri),
            "dbt": dbt_resource(),
        }

    def lake(self) -> LocalLakeStore:
        return LocalLakeStore(self.lake_uri)

    def warehouse(self):
        return warehouse_resource(self.warehouse_uri)

    def add_zone_shapes(self) -> None:
        """The zone shapes in the lake, as `lake/taxi_zone_shapes_lake` would write them (from
        the real shapefile in the test data): what the lake step of months with coordinates reads."""
        store = self.lake()
        if not store.list(SHAPES_TABLE):
            folder = Path(tempfile.mkdtemp())
            for name, data in sorted(lake_shapes_files().items()):  # "_zone_index.npz" first, as the I/O manager
                (folder / name).write_bytes(data)
                store.publish(folder / name, f"{SHAPES_TABLE}/{name}")
            shutil.rmtree(folder, ignore_errors=True)

    def materialize(self, spec: DatasetSpec, month: str, **kwargs) -> dg.ExecuteInProcessResult:
        """raw -> lake -> warehouse of one month; the zone shapes are put in the lake first
        for datasets that have coordinates (as `group:zones` materialized once)."""
        if month_has_coordinates(spec, month):
            self.add_zone_shapes()
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
