"""The definitions load the way `dagster dev` loads them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.deploy  # the dagster CLI as a process (`make check` runs `dg check defs`)
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

    from taxi_assets.definitions import defs
    from taxi_assets.defs.assets.keys import lake_key, warehouse_key, zones_key
    from taxi_assets.spec.datasets import DATASETS

    graph = defs.resolve_asset_graph()
    keys = [k for spec in DATASETS.values() for k in (lake_key(spec), warehouse_key(spec))]
    keys += [zones_key("lake"), zones_key("warehouse")]
    for key in keys:
        schema = graph.get(key).metadata["dagster/column_schema"]
        assert isinstance(schema, dg.TableSchema), key
        assert [c.name for c in schema.columns if not c.description] == [], key
    yellow = {
        c.name: c.description for c in graph.get(lake_key(DATASETS["yellow"])).metadata["dagster/column_schema"].columns
    }
    assert "2 JFK" in yellow["RatecodeID"] and "6 group ride" in yellow["RatecodeID"]
    assert "rush-hour" in yellow["extra"]


# What every run worker, sensor tick and code server would pay again if the definitions
# imported them: each is imported where it is used, in the steps.
NOT_AT_LOAD = (
    "dbt",  # dbt-core: the dbt step only (taxi_assets/analytics/runner.py)
    "dagster_dbt",
    "agate",
    "sqlglot",
    "dagster_gcp",  # Dagster's component catalog would import it (definitions.py)
    "google.cloud.bigquery",
    "google.cloud.storage",
    "pandas",
    "matplotlib",  # the pickup maps (geo/choropleth.py)
    "pyproj",  # reading the shapefile (geo/shapes.py)
    "shapefile",
    "duckdb",  # opening the warehouse (storage/duckdb_warehouse.py, quality.py)
    "requests",  # talking HTTP (source/http.py, the sensors' ticks)
    "urllib3",
    "geopandas",
    "polars",
)

LOAD = """
import json, sys
import taxi_assets.definitions as d
graph = d.defs.resolve_asset_graph()
print(json.dumps({
    "modules": sorted(sys.modules),
    "keys": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
    "checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
}))
"""


def test_loading_the_definitions_imports_no_heavy_package():
    """Deterministic (no timing): a fresh interpreter loads the whole graph, dbt models and
    their checks included, without importing dbt, pandas, matplotlib, DuckDB, requests or the
    Google clients."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("TAXI_")}
    out = subprocess.run([sys.executable, "-c", LOAD], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "mart/trips_by_zone" in loaded["keys"] and "staging/stg_yellow_trips" in loaded["keys"]
    assert "mart/dim_zones:unique_dim_zones_location_id" in loaded["checks"]
    heavy = sorted(m for m in loaded["modules"] if any(m == h or m.startswith(h + ".") for h in NOT_AT_LOAD))
    assert heavy == [], f"imported when the definitions load: {heavy}"


def test_the_code_location_has_one_name_in_every_workspace_and_in_the_project(monkeypatch):
    """`make dev`/`make demo` (workspace.yaml), the deployment (deploy/workspace.yaml) and the
    project's own name ([tool.dg.project], [tool.dagster]) agree: Dagster otherwise logs a
    mismatch at every load and the UI names the location after the module."""
    import tomllib

    from dagster._core.workspace.load import location_origins_from_yaml_paths

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["tool"]
    names = {project["dg"]["project"]["code_location_name"], project["dagster"]["code_location_name"]}
    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("DAGSTER_CODE_SERVER_PORT", "4000")
    for workspace in (root / "workspace.yaml", root / "deploy" / "workspace.yaml"):
        names |= {origin.location_name for origin in location_origins_from_yaml_paths([str(workspace)])}
    assert names == {"taxi_assets"}
