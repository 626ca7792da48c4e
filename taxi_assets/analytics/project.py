"""The analytics layer's plumbing: the dbt project in taxi_assets/analytics/dbt_project, pointed at the
warehouse resource's URI (TAXI_WAREHOUSE_URI), and its manifest.

- Target: dbt-duckdb on the DuckDB file, or dbt-bigquery on bigquery://PROJECT/DATASET
  (profiles.yml reads the TAXI_DBT_* variables this module computes from the warehouse resource,
  given to the dbt process only: this process's os.environ is never changed).
- Credentials as in storage/gcp.py: the key's JSON (or base64) from TAXI_GCP_CREDENTIALS_JSON,
  validated here, reaches the dbt process in its environment field by field, the private key and
  its id as DBT_ENV_SECRET_* (dbt scrubs those values from its logs and errors); never a file,
  never an argument.
  Unset: application-default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the workload).
- DuckDB has one writer: a dbt run holds the warehouse's writer lock (storage/duckdb_warehouse.py).
- The manifest (what the Dagster assets are made from) is built by `make install` and rebuilt
  only when a file of the project is newer, so loading the definitions does not parse the project.

By hand, against the same warehouse and lock: `python -m taxi_assets.analytics build --month 2021-01`
(any dbt command and arguments; --month becomes the vars a Dagster run passes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import normalize_month
from taxi_assets.storage.gcp import _key_info, credentials_from_json
from taxi_assets.storage.warehouse import duckdb_path as warehouse_file
from taxi_assets.storage.warehouse import warehouse_kind

PROJECT_DIR = Path(__file__).parent / "dbt_project"
TARGET_DIR = PROJECT_DIR / "target"
MANIFEST_PATH = TARGET_DIR / "manifest.json"
# profiles.yml's variable for each field of the service account key (secrets: DBT_ENV_SECRET_*).
KEY_FIELDS_ENV = {
    "private_key": "DBT_ENV_SECRET_GCP_PRIVATE_KEY",
    "private_key_id": "DBT_ENV_SECRET_GCP_PRIVATE_KEY_ID",
    "project_id": "TAXI_DBT_GCP_KEY_PROJECT_ID",
    "client_email": "TAXI_DBT_GCP_KEY_CLIENT_EMAIL",
    "client_id": "TAXI_DBT_GCP_KEY_CLIENT_ID",
    "token_uri": "TAXI_DBT_GCP_KEY_TOKEN_URI",
}


def duckdb_path(uri: str) -> str:
    """The warehouse file as the loads name it (storage/warehouse.py), absolute: dbt runs in the
    project's folder, and loads and dbt must take the same lock."""
    return str(Path(warehouse_file(uri)).resolve())


def dbt_target(uri: str) -> str:
    kind = warehouse_kind(uri)
    if kind not in ("duckdb", "bigquery"):
        raise ValueError(f"no dbt target for warehouse {uri!r}: use duckdb:///FILE or bigquery://PROJECT/DATASET")
    return kind


def dbt_env(uri: str, location: str | None = None, credentials_json: str | None = None) -> dict[str, str]:
    """The environment variables that point a dbt process (profiles.yml) at the warehouse `uri`."""
    target = dbt_target(uri)
    if target == "duckdb":
        return {"TAXI_DBT_TARGET": target, "TAXI_DBT_DUCKDB_PATH": duckdb_path(uri)}
    from taxi_assets.storage.bigquery_warehouse import parse_bigquery_uri

    project, dataset = parse_bigquery_uri(uri)
    env = {"TAXI_DBT_TARGET": target, "TAXI_DBT_BQ_PROJECT": project, "TAXI_DBT_BQ_DATASET": dataset}
    if location:
        env["TAXI_BIGQUERY_LOCATION"] = location
    if credentials_json:
        credentials_from_json(credentials_json)  # a clear error (that never quotes the key) if unusable
        info = _key_info(credentials_json) or {}
        env.update({name: str(info[field]) for field, name in KEY_FIELDS_ENV.items() if info.get(field)})
    return env


def warehouse_dbt_env(warehouse) -> dict[str, str]:
    """dbt's variables for the warehouse resource (DuckDB needs no location and no key)."""
    location, key = getattr(warehouse, "location", None), getattr(warehouse, "gcp_credentials_json", None)
    return dbt_env(warehouse.uri, location, key)


def dbt_process_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A dbt process's environment: this process's, passed on whole and unchanged (PATH, HOME,
    Google's own variables), with `extra` (the warehouse's dbt variables) on top. No setting is
    read from it here: settings come from the resources."""
    return {**os.environ, **extra}


def writer_lock(uri: str):
    """The DuckDB warehouse's writer lock (BigQuery needs none)."""
    if dbt_target(uri) == "duckdb":
        from taxi_assets.storage.duckdb_warehouse import writer_lock as duckdb_writer_lock

        return duckdb_writer_lock(duckdb_path(uri))
    return nullcontext()


def feeds() -> dict[str, str]:
    """Each trip table and its first month: the months a mart must find in the warehouse."""
    return {spec.table: spec.first_month for spec in DATASETS.values()}


def dbt_vars(month: str) -> str:
    return json.dumps({"month": normalize_month(month), "feeds": feeds()})


# ------------------------------------------------------------------------------- manifest


def _project_files() -> Iterator[Path]:
    # target/ and logs/ are not walked: every dbt run adds a folder of compiled SQL to target/,
    # and the definitions check the manifest at every load.
    for folder, subfolders, files in os.walk(PROJECT_DIR):
        if Path(folder) == PROJECT_DIR:
            subfolders[:] = [d for d in subfolders if d not in (TARGET_DIR.name, "logs")]
        yield from (Path(folder) / name for name in files)


def manifest_is_current() -> bool:
    """The manifest exists and is newer than every file of the project."""
    try:
        built = MANIFEST_PATH.stat().st_mtime
    except OSError:
        return False
    return all(path.stat().st_mtime <= built for path in _project_files())


def prepare_manifest(force: bool = False) -> Path:
    """Parse the project into target/manifest.json unless it is current (offline: no dbt deps).

    Parsed for the DuckDB target whatever the warehouse: the manifest only tells Dagster which
    models, sources and tests there are (every run parses again for its real target)."""
    if force or not manifest_is_current():
        # Parsing reads no credentials and opens no connection: the target's type is enough.
        no_key = {name: "" for name in KEY_FIELDS_ENV.values()}
        env = dbt_process_env({**no_key, "TAXI_DBT_TARGET": "duckdb", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
        subprocess.run(
            [
                dbt_executable(),
                "parse",
                "--quiet",
                "--project-dir",
                str(PROJECT_DIR),
                "--profiles-dir",
                str(PROJECT_DIR),
                "--target-path",
                str(TARGET_DIR),
            ],
            env=env,
            check=True,
            cwd=PROJECT_DIR,
        )
    return MANIFEST_PATH


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


# ------------------------------------------------------------------------------- by hand


def main(argv: list[str], warehouse=None) -> int:
    """`python -m taxi_assets.analytics DBT_COMMAND [--month YYYY-MM] [dbt arguments...]`
    runs dbt on the warehouse of TAXI_WAREHOUSE_URI, holding its writer lock;
    `python -m taxi_assets.analytics prepare` builds the manifest.

    `warehouse`: the warehouse resource; by default built from the environment as the definitions
    build it (defs/resources.py), with its EnvVar fields resolved as at a run's start."""
    if not argv or argv[0] in ("-h", "--help"):
        print(main.__doc__)
        return 0
    if argv == ["prepare"]:  # `make install` and the image build: the manifest, ahead of time
        print(prepare_manifest(force=True))
        return 0
    args = list(argv)
    if "--month" in args:
        i = args.index("--month")
        month = args[i + 1]
        args[i : i + 2] = ["--vars", dbt_vars(month)]
    if warehouse is None:
        from taxi_assets.defs.resources import build_resources

        warehouse = build_resources()["warehouse"].process_config_and_initialize()
    env = dbt_process_env({**warehouse_dbt_env(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    command = [dbt_executable(), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    with writer_lock(warehouse.uri):
        return subprocess.run(command, env=env, cwd=PROJECT_DIR).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
