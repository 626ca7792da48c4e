"""A feed's whole history as one backfill through the real daemon: every month from the feed's
first (fhvhv: 2019-02) to the latest publishable one, a few hundred rows each, from two sources
in order (the CSV mirror where it has the month, Parquet for the rest), into DuckDB."""

import contextlib
import json
import time

import duckdb
import pyarrow.parquet as pq
import pytest

from taxi_assets.defs.assets.keys import lake_key, raw_key, warehouse_key
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.partitions import monthly_partitions
from taxi_assets_tests.deploy.graphql import TaxiGraphQL
from taxi_assets_tests.deploy.harness import fresh_database, install_instance
from taxi_assets_tests.deploy.services import LOCATION, Deployment, wait_for
from taxi_assets_tests.helpers import csv_data_rows
from taxi_tools.mirror import MirrorServer, generate, relpath

SPEC = DATASETS["fhvhv"]
KEYS = [raw_key(SPEC), lake_key(SPEC), warehouse_key(SPEC)]
ROWS = 200
CSV_MONTHS = ("2019-02", "2021-07")  # what the course's CSV mirror holds
BACKFILL_TIMEOUT_S = 400
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")


def test_whole_history_of_a_feed_is_one_backfill_with_exactly_the_mirror_rows(tmp_path, pg_server_url):
    keys = monthly_partitions(SPEC).get_partition_keys()
    months = [k[:7] for k in keys]
    assert months[0] == SPEC.first_month and len(months) > 80
    mirror_root = tmp_path / "mirror"
    started = time.monotonic()
    csv_months = [m for m in months if CSV_MONTHS[0] <= m <= CSV_MONTHS[1]]
    generate(mirror_root, [SPEC.name], csv_months, rows=ROWS, formats=("csv",))
    generate(mirror_root, [SPEC.name], months, rows=ROWS, formats=("parquet",))
    generated_s = time.monotonic() - started
    expected = {}
    for m in months:
        csv_file = mirror_root / relpath(SPEC.name, m)
        expected[m] = (
            csv_data_rows(csv_file)
            if csv_file.exists()
            else pq.ParquetFile(mirror_root / relpath(SPEC.name, m, "parquet")).metadata.num_rows
        )

    warehouse_file = tmp_path / "warehouse.duckdb"
    home = install_instance(tmp_path / "dagster_home")
    with fresh_database(pg_server_url) as db, MirrorServer(mirror_root) as mirror:
        template = mirror.url_template
        deployment = Deployment(
            home=home,
            logs=tmp_path / "logs",
            env={
                **db.dagster_env(),
                "TAXI_SOURCE_URL": f"{template} {template.replace('.csv.gz', '.parquet')}",
                "TAXI_LAKE_URI": str(tmp_path / "lake"),
                "TAXI_WAREHOUSE_URI": f"duckdb:///{warehouse_file}",
                "TAXI_STAGING_DIR": str(tmp_path / "staging"),
            },
        )
        try:
            deployment.start()
            client = TaxiGraphQL("127.0.0.1", deployment.webserver_port)
            status = wait_for(
                "the code location to load", lambda: client.location_status(LOCATION), 120, on_timeout=deployment.tails
            )
            assert status == "LOADED", f"{status}\n{deployment.tails()}"
            started = time.monotonic()
            backfill = client.launch_backfill(keys, KEYS, title=f"e2e: the whole history of {SPEC.name}")
            final = wait_for(
                f"backfill {backfill} to finish",
                lambda: (s := client.backfill_status(backfill)) in TERMINAL_BACKFILL and s,
                BACKFILL_TIMEOUT_S, every=1.0, on_timeout=deployment.tails,
            )  # fmt: skip
            backfill_s = time.monotonic() - started
            assert final == "COMPLETED_SUCCESS", deployment.tails()
            for key in KEYS:
                stats = client.materialized_partitions(key)
                assert stats["numMaterialized"] == len(keys), (key, stats)
                assert stats["materialized_ranges"] == [(keys[0], keys[-1])], key
            runs = client.runs({"dagster/backfill": backfill})
        finally:
            deployment.stop()

    with contextlib.closing(duckdb.connect(str(warehouse_file), read_only=True)) as conn:
        counts = dict(
            conn.execute(f"SELECT strftime(source_month, '%Y-%m'), count(*) FROM {SPEC.table} GROUP BY 1").fetchall()
        )
    assert counts == expected
    # Where the month came from: the CSV mirror first, the Parquet source for the rest.
    lake = tmp_path / "lake" / "raw" / SPEC.name
    assert (lake / f"month={CSV_MONTHS[0]}" / f"{SPEC.name}_tripdata_{CSV_MONTHS[0]}.csv.gz").exists()
    assert (lake / f"month={months[-1]}" / f"{SPEC.name}_tripdata_{months[-1]}.parquet").exists()
    figures = {
        "months": len(months),
        "rows_per_month": ROWS,
        "runs": len(runs),
        "generate_s": round(generated_s, 1),
        "backfill_s": round(backfill_s, 1),
    }
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    print(f"\nwhole-history e2e figures: {figures}")
