"""The product configured for Google Cloud from environment variables only, as in production:
raw and lake in (fake-)GCS, the warehouse in (fake) BigQuery, credentials from a service
account key's JSON in TAXI_GCP_CREDENTIALS_JSON. The key is real (generated here) and its
token endpoint is the fake's, so the Google clients really sign with it; and the key
never shows in the run's events, logs or errors."""

from __future__ import annotations

import base64
import json
import logging
import traceback
import uuid

import dagster as dg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dagster._serdes import serialize_value
from google.auth import jwt
from google.oauth2 import service_account

from taxi_assets.analytics.runner import dbt_resource
from taxi_assets.defs.assets import build_dataset_assets
from taxi_assets.defs.assets.keys import mart_key, zones_key
from taxi_assets.defs.resources import build_resources
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import partition_key
from taxi_assets.storage.gcp import CredentialsError, credentials_from_json
from taxi_assets.storage.gcs import GCSLakeStore
from taxi_assets_tests.fake_google import DATASET, PROJECT, SLOT_MS
from taxi_assets_tests.harness import all_assets
from taxi_assets_tests.helpers import csv_data_rows, mirror_file

EMAIL = "taxi-loader@taxi-project.iam.gserviceaccount.com"


@pytest.fixture(scope="session")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture
def key_json(rsa_key, fake_google) -> str:
    private, _ = rsa_key
    return json.dumps(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": uuid.uuid4().hex + uuid.uuid4().hex[:8],
            "private_key": private,
            "client_email": EMAIL,
            "client_id": "112233445566778899",
            "token_uri": f"{fake_google.url}/token",
        }
    )


@pytest.fixture
def cloud_env(monkeypatch, tmp_path, mirror, gcs_bucket, fake_google, key_json):
    """The environment of a Google Cloud deployment, pointed at the local stand-ins."""
    monkeypatch.setenv("TAXI_SOURCE_URL", mirror.url_template)
    monkeypatch.setenv("TAXI_ZONES_URL", mirror.zones_url)
    monkeypatch.setenv("TAXI_LAKE_URI", f"gs://{gcs_bucket.name}/lake")
    monkeypatch.setenv("TAXI_WAREHOUSE_URI", f"bigquery://{PROJECT}/{DATASET}")
    monkeypatch.setenv("TAXI_BIGQUERY_LOCATION", "EU")
    monkeypatch.setenv("TAXI_GCP_CREDENTIALS_JSON", key_json)
    monkeypatch.setenv("TAXI_STAGING_DIR", str(tmp_path / "staging"))
    # The real client's own switch for another endpoint (STORAGE_EMULATOR_HOST is set by fake_gcs).
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", fake_google.url)
    return gcs_bucket


def materialize(spec, month: str, instance=None, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_dataset_assets(spec, "bigquery"),
        partition_key=partition_key(month),
        resources={**build_resources(), "dbt": dbt_resource()},
        instance=instance,
        **kwargs,
    )


def test_a_month_materializes_on_google_cloud_signed_with_the_key_from_the_env(
    cloud_env, fake_google, mirror_root, rsa_key
):
    spec = DATASETS["green"]
    result = materialize(spec, "2021-01")
    assert result.success

    expected = csv_data_rows(mirror_file(mirror_root, "green", "2021-01"))
    md = result.asset_materializations_for_node("warehouse__green_trips")[0].metadata
    assert md["dagster/row_count"].value == expected
    assert md["slot_ms"].value == SLOT_MS
    assert md["output_bytes"].value > 0
    job_id = md["job_id"].value
    load = fake_google.jobs[job_id]
    assert load["jobReference"]["location"] == "EU"
    assert load["configuration"]["load"]["sourceUris"] == [
        f"gs://{cloud_env.name}/lake/green/month=2021-01/part-0.parquet"
    ]
    assert load["configuration"]["load"]["destinationTable"]["tableId"] == "green_trips$202101"

    # Every BigQuery call carried a token the token endpoint issued for a JWT signed by our key.
    bigquery_calls = [r for r in fake_google.requests if r.path.startswith("/bigquery/")]
    assert bigquery_calls
    issued = {f"Bearer {t}" for t in fake_google.issued_tokens}
    assert {r.headers.get("authorization") for r in bigquery_calls} <= issued
    _, public = rsa_key
    for assertion in fake_google.token_assertions:
        claims = jwt.decode(assertion, certs=public)  # verifies the signature
        assert claims["iss"] == EMAIL
        assert "https://www.googleapis.com/auth/cloud-platform" in claims["scope"]


def test_zones_materialize_on_google_cloud(cloud_env, fake_google, mirror_root):
    """The zone assets in one run, configured from the environment (the dbt models on
    BigQuery: test_marts.py)."""
    result = dg.materialize(
        all_assets(),
        selection=[zones_key("raw"), zones_key("lake"), zones_key("warehouse")],
        resources={**build_resources(), "dbt": dbt_resource()},
    )
    assert result.success

    zone_rows = csv_data_rows(mirror_root / "misc" / "taxi_zone_lookup.csv")
    (zones_event,) = result.asset_materializations_for_node("warehouse__taxi_zone_lookup")
    assert zones_event.metadata["dagster/row_count"].value == zone_rows
    (load,) = fake_google.load_configs()
    assert load["sourceUris"] == [f"gs://{cloud_env.name}/lake/taxi_zone_lookup/part-0.parquet"]
    assert load["destinationTable"]["tableId"] == "taxi_zone_lookup"
    assert (load["writeDisposition"], load["schema"]["fields"][0]["mode"]) == ("WRITE_TRUNCATE", "REQUIRED")
    (job,) = fake_google.jobs.values()
    assert job["jobReference"]["location"] == "EU"


def test_the_gcs_client_uses_the_key_from_the_env(key_json):
    store = GCSLakeStore.from_uri("gs://some-bucket/lake", credentials_json=key_json)
    assert isinstance(store.client._credentials, service_account.Credentials)
    assert store.client._credentials.service_account_email == EMAIL
    # Also as base64, the form dagster-gcp's BigQueryResource takes.
    encoded = base64.b64encode(key_json.encode()).decode()
    assert credentials_from_json(encoded).service_account_email == EMAIL


def secret_fragments(key_json: str, fake_google) -> list[str]:
    info = json.loads(key_json)
    body = [line for line in info["private_key"].splitlines() if line and not line.startswith("-----")]
    return [
        *body,
        info["private_key_id"],
        base64.b64encode(key_json.encode()).decode()[:48],
        *fake_google.issued_tokens,
        *fake_google.token_assertions,
    ]


def leaks(fragments: list[str], text: str) -> list[str]:
    return [f[:12] + "..." for f in fragments if f in text]


def run_record_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """Everything Dagster stored about a run: its record and every event of its event log."""
    parts = [serialize_value(instance.get_run_by_id(run_id))]
    parts += [serialize_value(entry) for entry in instance.all_logs(run_id)]
    return "\n".join(parts)


@pytest.mark.slow
def test_secrets_never_logged(cloud_env, fake_google, key_json, caplog, capfd, monkeypatch):
    caplog.set_level(logging.DEBUG)
    instance = dg.DagsterInstance.ephemeral()
    spec = DATASETS["yellow"]
    texts = []

    # 1. A successful run (the key signs token requests for GCS and BigQuery).
    ok = materialize(spec, "2021-01", instance=instance)
    assert ok.success and fake_google.issued_tokens
    texts.append(run_record_text(instance, ok.run_id))

    # 2. A run whose BigQuery load fails: the error travels through Dagster's events.
    fake_google.failing_partitions["202102"] = "Error while reading data, error message: bad file"
    failed = materialize(spec, "2021-02", instance=instance, raise_on_error=False)
    assert not failed.success
    failure_text = run_record_text(instance, failed.run_id)
    assert "yellow 2021-02" in failure_text and "bad file" in failure_text  # the scan sees the errors
    texts.append(failure_text)
    with pytest.raises(Exception) as raised:
        materialize(spec, "2021-02", instance=instance)
    texts.append("".join(traceback.format_exception(raised.value)))

    # 3. A broken key (cut short, still holding most of the private key): the error names the
    #    variable, never its content.
    monkeypatch.setenv("TAXI_GCP_CREDENTIALS_JSON", key_json[:-40])
    broken = materialize(spec, "2021-01", instance=instance, raise_on_error=False)
    assert not broken.success
    broken_text = run_record_text(instance, broken.run_id)
    assert "TAXI_GCP_CREDENTIALS_JSON does not hold a usable Google credentials JSON" in broken_text
    texts.append(broken_text)
    with pytest.raises(CredentialsError) as raised:
        materialize(spec, "2021-01", instance=instance)
    texts.append("".join(traceback.format_exception(raised.value)))

    # 4. A dbt run on BigQuery (mart/dim_zones): dbt-bigquery gets the key in its environment
    #    and asks the fake for a token; the fake runs no SQL, so the run fails, and dbt's output
    #    and errors pass through Dagster's events.
    monkeypatch.setenv("TAXI_GCP_CREDENTIALS_JSON", key_json)
    monkeypatch.setenv("TAXI_DBT_BQ_API_ENDPOINT", fake_google.url)
    tokens_before = len(fake_google.issued_tokens)
    dbt_run = dg.materialize(
        all_assets(),
        selection=[mart_key("dim_zones")],
        resources={**build_resources(), "dbt": dbt_resource()},
        instance=instance,
        raise_on_error=False,
    )
    assert not dbt_run.success and len(fake_google.issued_tokens) > tokens_before
    dbt_text = run_record_text(instance, dbt_run.run_id)
    assert "dim_zones" in dbt_text and "bigquery" in dbt_text
    texts.append(dbt_text)

    captured = capfd.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    everything = "\n".join(texts)
    assert f"gs://{cloud_env.name}/lake" in everything  # the scan covers the runs' real content

    fragments = secret_fragments(key_json, fake_google)
    assert len(fragments) > 20
    assert leaks(fragments, "x" + fragments[3] + "y")  # the scan can find a leak
    assert leaks(fragments, everything) == []
