"""The definitions load the way `dagster dev` loads them."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [Path(sys.executable).parent / "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_every_column_of_every_trips_layer_and_the_zones_has_a_description():
    import dagster as dg

    from taxi_assets.datasets import DATASETS
    from taxi_assets.defs.assets.keys import lake_key, warehouse_key, zones_key
    from taxi_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = [k for spec in DATASETS.values() for k in (lake_key(spec), warehouse_key(spec))]
    keys += [zones_key("lake"), zones_key("warehouse")]
    for key in keys:
        schema = graph.get(key).metadata["dagster/column_schema"]
        assert isinstance(schema, dg.TableSchema), key
        assert [c.name for c in schema.columns if not c.description] == [], key
    yellow = {c.name: c.description for c in graph.get(lake_key(DATASETS["yellow"])).metadata["dagster/column_schema"].columns}
    assert "2 JFK" in yellow["RatecodeID"] and "6 group ride" in yellow["RatecodeID"]
    assert "rush-hour" in yellow["extra"]
