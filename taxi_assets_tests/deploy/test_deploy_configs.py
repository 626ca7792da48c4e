"""The deployment files against Dagster's and Kubernetes' own schemas, without a cluster.

Dagster's instance validation checks the instance yaml's shape; each configurable class
(run launcher, compute logs, run coordinator) is then processed with its own config
schema, as the instance would on start. The Kubernetes manifests are parsed into the
kubernetes client's typed models (unknown keys and missing required fields fail), and
the names they share with the instance yaml must agree.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import ensure_workspace_config
from dagster._serdes.config_class import ConfigurableClassData, class_from_code_pointer
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
from kubernetes import client as k8s

from taxi_assets_tests.deploy.harness import DEPLOY

K8S = DEPLOY / "k8s"
ENV_REF = re.compile(r"\{env: (\w+)\}")
# Made by hand before the manifests are applied (docs/deploy.md).
DOCUMENTED_CONFIG_MAPS = {"taxi-dagster-instance", "taxi-dagster-workspace"}
DOCUMENTED_SECRETS = {"taxi-postgres"}
MODELS = {
    "ConfigMap": k8s.V1ConfigMap,
    "ServiceAccount": k8s.V1ServiceAccount,
    "Role": k8s.V1Role,
    "RoleBinding": k8s.V1RoleBinding,
    "Deployment": k8s.V1Deployment,
    "Service": k8s.V1Service,
}


def env_refs(*files: Path) -> set[str]:
    return {name for f in files for name in ENV_REF.findall(f.read_text())}


def load_instance(tmp_path: Path, monkeypatch, *files: Path) -> dict:
    """The files concatenated as $DAGSTER_HOME/dagster.yaml, validated as Dagster loads it."""
    for name in env_refs(*files):
        monkeypatch.setenv(name, "4000" if name.endswith("_PORT") else f"test-{name.lower()}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("\n".join(f.read_text() for f in files))
    config, _ = dagster_instance_config(str(home))
    return config


def process_class(entry: dict) -> dict:
    """A {module, class, config} entry through its class's config schema (env resolved),
    without instantiating it (a run launcher would look for its cluster)."""
    # The instance's own module resolution (dagster.core.* -> dagster._core.*).
    where = ConfigurableClassData(entry["module"], entry["class"], "")
    cls = class_from_code_pointer(where.module_name, where.class_name)
    result = process_config(cls.config_type(), entry.get("config") or {})
    assert result.success, [e.message for e in result.errors]
    return result.value


def test_the_single_machine_instance_and_workspace_are_valid(tmp_path, monkeypatch):
    config = load_instance(tmp_path, monkeypatch, DEPLOY / "dagster.yaml")
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    process_class(config["run_coordinator"])
    storage = process_class(
        {
            "module": "dagster_postgres",
            "class": "DagsterPostgresStorage",
            "config": config["storage"]["postgres"],
        }
    )
    assert storage["postgres_db"]["db_name"] == "test-dagster_pg_db"
    assert storage["postgres_db"]["scheme"] == "postgresql+psycopg2"  # the driver that is installed
    assert config["concurrency"]["pools"] == {"granularity": "op", "default_limit": 2}
    assert config["run_retries"]["enabled"] and config["run_retries"]["max_retries"] == 2
    assert config["telemetry"] == {"enabled": False}

    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("DAGSTER_CODE_SERVER_PORT", "4000")
    (location,) = ensure_workspace_config(workspace, str(DEPLOY / "workspace.yaml"))["load_from"]
    assert location["grpc_server"]["location_name"] == "taxi_assets"


def test_the_kubernetes_instance_is_the_single_machine_one_plus_the_run_launcher(tmp_path, monkeypatch):
    base = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    overlay = yaml.safe_load((K8S / "instance.yaml").read_text())
    assert not set(base) & set(overlay), "concatenated, a repeated top-level key would override"

    config = load_instance(tmp_path, monkeypatch, DEPLOY / "dagster.yaml", K8S / "instance.yaml")
    assert config["storage"] == base["storage"] and config["run_retries"] == base["run_retries"]
    launcher = process_class(config["run_launcher"])
    assert launcher["job_namespace"] == "test-dagster_k8s_namespace"
    process_class(config["compute_logs"])
    # The raw Kubernetes parts of the run pods are what the kubernetes client accepts.
    run_k8s = launcher["run_k8s_config"]
    k8s_model_from_dict(
        k8s.V1Container, {"name": "run", **k8s_snake_case_dict(k8s.V1Container, run_k8s["container_config"])}
    )
    k8s_snake_case_dict(k8s.V1JobSpec, run_k8s["job_spec_config"])


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], object]:
    """Every manifest parsed into its kubernetes model, by (kind, name)."""
    models = {}
    for doc in yaml.safe_load_all((K8S / "manifests.yaml").read_text()):
        model_class = MODELS[doc["kind"]]
        models[(doc["kind"], doc["metadata"]["name"])] = k8s_model_from_dict(
            model_class, k8s_snake_case_dict(model_class, doc)
        )
    return models


def container(manifests, deployment: str) -> k8s.V1Container:
    (c,) = manifests[("Deployment", deployment)].spec.template.spec.containers
    return c


def test_the_kubernetes_manifests_parse_and_agree_with_the_instance(manifests, tmp_path, monkeypatch):
    launcher = yaml.safe_load((K8S / "instance.yaml").read_text())["run_launcher"]["config"]
    config_maps = {name for kind, name in manifests if kind == "ConfigMap"} | DOCUMENTED_CONFIG_MAPS
    deployments = {name: manifests[("Deployment", name)] for kind, name in manifests if kind == "Deployment"}
    assert set(deployments) == {"taxi-code-server", "taxi-webserver", "taxi-daemon"}

    # Every ConfigMap and Secret a pod or the run launcher reads exists.
    for name, deployment in deployments.items():
        pod = deployment.spec.template.spec
        assert pod.service_account_name in {n for k, n in manifests if k == "ServiceAccount"}
        for volume in pod.volumes or []:
            assert volume.config_map.name in config_maps, (name, volume.name)
        for source in pod.containers[0].env_from:
            assert (
                (source.config_map_ref.name in config_maps)
                if source.config_map_ref
                else (source.secret_ref.name in DOCUMENTED_SECRETS)
            ), name
    assert launcher["instance_config_map"] in config_maps
    assert set(launcher["env_config_maps"]) <= config_maps
    assert set(launcher["env_secrets"]) <= DOCUMENTED_SECRETS

    # Every {env: ...} of the instance and workspace is set in the pods: by taxi-config, by
    # the Postgres secret (DAGSTER_PG_*), or in the container's own env.
    taxi_config = set(manifests[("ConfigMap", "taxi-config")].data)
    for name in ("taxi-webserver", "taxi-daemon"):
        own = {e.name for e in container(manifests, name).env}
        for ref in env_refs(DEPLOY / "dagster.yaml", K8S / "instance.yaml", DEPLOY / "workspace.yaml"):
            assert ref in taxi_config | own or ref.startswith("DAGSTER_PG_"), (name, ref)

    # Webserver and daemon see the same instance, workspace and code server.
    web, daemon = container(manifests, "taxi-webserver"), container(manifests, "taxi-daemon")
    assert web.env == daemon.env and web.env_from == daemon.env_from
    assert web.volume_mounts == daemon.volume_mounts
    mounts = {m.name: m.mount_path for m in web.volume_mounts}
    env = {e.name: e.value for e in web.env}
    assert env["DAGSTER_HOME"] == mounts["instance"] == launcher["dagster_home"]
    for c in (web, daemon):
        workspace_path = c.command[c.command.index("-w") + 1]
        assert Path(workspace_path) == Path(mounts["workspace"]) / "workspace.yaml"

    # The code server listens where the workspace points.
    code = container(manifests, "taxi-code-server")
    service = manifests[("Service", env["DAGSTER_CODE_SERVER_HOST"])]
    port = int(code.command[code.command.index("-p") + 1])
    assert service.spec.ports[0].port == port == int(env["DAGSTER_CODE_SERVER_PORT"])
    assert shlex.join(code.command).startswith("dagster code-server start -m taxi_assets.definitions")
    assert {e.name: e.value for e in code.env}["DAGSTER_CURRENT_IMAGE"] == code.image

    # One daemon per instance, never two during a rollout.
    assert deployments["taxi-daemon"].spec.replicas == 1
    assert deployments["taxi-daemon"].spec.strategy.type == "Recreate"
