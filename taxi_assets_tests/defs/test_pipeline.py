"""raw -> lake -> warehouse for every dataset, against the real mirror over HTTP and a real DuckDB."""

from __future__ import annotations

import hashlib

import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets.keys import lake_key, raw_key, shapes_key, warehouse_key
from taxi_assets.spec.datasets import DATASETS
from taxi_assets_tests.harness import MONTHS
from taxi_assets_tests.helpers import csv_data_rows, mirror_file


@pytest.mark.first_case_in_check
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_two_months_land_in_every_layer_with_the_source_row_count(platform, mirror_root, dataset):
    spec = DATASETS[dataset]
    for month in MONTHS:
        result = platform.materialize(spec, month)
        assert result.success

        source = mirror_file(mirror_root, dataset, month)
        expected = csv_data_rows(source)
        assert expected > 0

        raw_files = platform.lake().list(f"raw/{dataset}/month={month}")
        assert [f.rsplit("/", 1)[-1] for f in raw_files] == [source.name]
        raw_bytes = (platform.lake().root / raw_files[0]).read_bytes()
        assert raw_bytes == source.read_bytes()

        lake_file = platform.lake().root / dataset / f"month={month}" / "part-0.parquet"
        assert pq.ParquetFile(lake_file).metadata.num_rows == expected

        counts = platform.warehouse().month_row_counts(spec)
        assert counts[month] == expected

        raw_md = result.asset_materializations_for_node(f"raw__{dataset}_raw")[0].metadata
        assert raw_md["sha256"].value == hashlib.sha256(source.read_bytes()).hexdigest()
        assert raw_md["bytes"].value == source.stat().st_size
        assert raw_md["etag"].value
        lake_md = result.asset_materializations_for_node(f"lake__{dataset}_lake")[0].metadata
        assert lake_md["dagster/row_count"].value == expected
        wh_md = result.asset_materializations_for_node(f"warehouse__{spec.table}")[0].metadata
        assert wh_md["dagster/row_count"].value == expected

    # Both months are there side by side.
    counts = platform.warehouse().month_row_counts(spec)
    assert set(counts) == set(MONTHS)


def test_rematerializing_a_month_does_not_duplicate_it(platform, mirror_root):
    spec = DATASETS["yellow"]
    expected = csv_data_rows(mirror_file(mirror_root, "yellow", "2021-01"))
    for _ in range(2):
        assert platform.materialize(spec, "2021-01").success
    assert platform.warehouse().month_row_counts(spec) == {"2021-01": expected}
    # The table holds exactly the lake file's rows, as a multiset, once.
    lake_file = platform.lake().root / "yellow" / "month=2021-01" / "part-0.parquet"
    diff = platform.warehouse().query(
        f"SELECT (SELECT count(*) FROM (SELECT * FROM yellow_trips EXCEPT ALL SELECT * FROM read_parquet('{lake_file}', hive_partitioning=false))) AS extra, "
        f"(SELECT count(*) FROM (SELECT * FROM read_parquet('{lake_file}', hive_partitioning=false) EXCEPT ALL SELECT * FROM yellow_trips)) AS missing"
    )
    assert diff.to_pylist() == [{"extra": 0, "missing": 0}]


def test_asset_graph_has_the_three_layers_in_lineage():
    from taxi_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for spec in DATASETS.values():
        # Feeds with coordinate eras (yellow, green) map them to zones with the zone shapes.
        shapes = {shapes_key("lake")} if spec.name in ("yellow", "green") else set()
        assert graph.get(lake_key(spec)).parent_keys == {raw_key(spec)} | shapes
        assert graph.get(warehouse_key(spec)).parent_keys == {lake_key(spec)}
