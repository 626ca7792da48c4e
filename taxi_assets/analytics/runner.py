"""dbt in the models' steps: the `dbt` resource runs dbt through dagster-dbt's DbtCliResource
against the warehouse, holding its writer lock, on what the step selected, and turns dbt's
events into the step's results. dagster-dbt (and with it dbt-core) is imported only here, when
a step runs dbt, not when the definitions load (manifest.py says why).

dagster-dbt's `DbtCliResource.cli(context=...)` reads the manifest, the translator and the dbt
selection from metadata that `@dbt_assets` puts on its assets definition; these assets are built
from specs instead, so the step gives `cli` the manifest and a translator itself and chooses
dbt's selection from the step's selected assets and checks as `@dbt_assets` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from taxi_assets.analytics.manifest import EXCLUDE_TAG, SELECT_TAG, UNIQUE_ID_KEY, ManifestTranslator, dbt_name
from taxi_assets.analytics.project import PROJECT_DIR, dbt_executable, dbt_process_env, warehouse_dbt_env, writer_lock
from taxi_assets.storage.warehouse import Warehouse

if TYPE_CHECKING:
    from dagster_dbt import DbtCliInvocation


class DbtCli(dg.ConfigurableResource):
    """Where dbt is (the project and the executable), and a step's dbt run."""

    project_dir: str
    dbt_executable: str

    def run(
        self,
        context: dg.AssetExecutionContext,
        warehouse: Warehouse,
        translator: ManifestTranslator,
        args: list[str],
    ) -> tuple[list[Any], Exception | None]:
        """dbt `args` against the warehouse, holding its writer lock, on what the step selected:
        the step's events, and the error dbt ended with (raise it after passing the events on).

        Events are passed on once dbt has exited: on DuckDB the dbt process holds the file until
        then, and the marts' figures are read from it afterwards."""
        selection_args, indirect = selection(context, translator)
        events: list[Any] = []
        with writer_lock(warehouse.uri):
            env = warehouse_dbt_env(warehouse)
            if indirect:
                env["DBT_INDIRECT_SELECTION"] = indirect
            invocation = start(
                translator, self.project_dir, self.dbt_executable, args, selection_args, dbt_process_env(env)
            )
            try:
                events.extend(step_events(context, invocation.stream()))
            except Exception as exc:  # noqa: BLE001 - returned, raised by the caller after the events
                return events, exc
        return events, None


def dbt_resource() -> DbtCli:
    return DbtCli(project_dir=str(PROJECT_DIR), dbt_executable=dbt_executable())


def selection(context: dg.AssetExecutionContext, translator: ManifestTranslator) -> tuple[list[str], str | None]:
    """dbt's selection arguments for what the step must build and test, and the
    DBT_INDIRECT_SELECTION it needs (None: dbt's default, eager: the tests of the models)."""
    assets_def = context.assets_def
    all_checks = {spec.key for spec in assets_def.node_check_specs_by_output_name.values()}
    assets, checks = set(context.selected_asset_keys), set(context.selected_asset_check_keys)
    if assets == set(assets_def.node_keys_by_output_name.values()) and checks == all_checks:
        tags = context.op_def.tags
        return [
            *(["--select", tags[SELECT_TAG]] if SELECT_TAG in tags else []),
            *(["--exclude", tags[EXCLUDE_TAG]] if EXCLUDE_TAG in tags else []),
        ], None

    def name(metadata) -> str:
        return dbt_name(translator.props(metadata[UNIQUE_ID_KEY]))

    models = [name(assets_def.specs_by_key[key].metadata) for key in sorted(assets, key=str)]
    if checks == {key for key in all_checks if key.asset_key in assets}:
        return ["--select", " ".join(models)], None
    # Some checks of the selected models left out, or checks without their model: exactly these.
    tests = [name(assets_def.get_spec_for_check_key(key).metadata) for key in sorted(checks, key=str)]
    return ["--select", " ".join(models + tests)], "empty"


def start(
    translator: ManifestTranslator,
    project_dir: str,
    dbt_executable: str,
    args: list[str],
    selection_args: list[str],
    env: Mapping[str, str],
) -> DbtCliInvocation:
    """Starts dbt as `DbtCliResource.cli` does, in the environment `env` (analytics.project.dbt_process_env:
    this process's, unchanged, plus the warehouse's dbt variables). `cli` would hand dbt os.environ
    itself, which would have to be changed while dbt starts."""
    from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource

    class Keys(DagsterDbtTranslator):
        """dagster-dbt's translation of dbt's events, to the keys the specs were built with."""

        def get_asset_key(self, dbt_resource_props) -> dg.AssetKey:
            return translator.get_asset_key(dbt_resource_props)

    cli = DbtCliResource(project_dir=project_dir, dbt_executable=dbt_executable)
    target_path = cli._get_unique_target_path(context=None)  # target/{id}, in the project (dbt's cwd)
    process_env = {
        **env,
        # What dagster-dbt sets for every dbt process it starts (its events are read from JSON logs).
        "DAGSTER_DBT_CLI": "true",
        "PYTHONUNBUFFERED": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_FORMAT": "json",
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(target_path),
        "DBT_PROJECT_DIR": project_dir,
    }
    return DbtCliInvocation.run(
        args=[cli.dbt_executable, *cli.global_config_flags, *args, *selection_args],
        env=process_env,
        manifest=translator.manifest,
        dagster_dbt_translator=Keys(),
        project_dir=Path(project_dir),
        target_path=Path(project_dir) / target_path,
        raise_on_error=True,
        context=None,
        adapter=None,  # dbt's adapter in this process serves only metadata the steps do not ask for
        cli_version=cli._cli_version,
    )


def step_events(context: dg.AssetExecutionContext, events: Iterable[Any]) -> Iterator[Any]:
    """dbt's events as the step's: a selected model's materialization as its MaterializeResult,
    a selected check's evaluation as its AssetCheckResult; the rest (a test dbt ran for a
    model of another step) as observations, as dagster-dbt does."""
    assets, checks = context.selected_asset_keys, context.selected_asset_check_keys
    for event in events:
        if isinstance(event, dg.AssetMaterialization) and event.asset_key in assets:
            yield dg.MaterializeResult(asset_key=event.asset_key, metadata=event.metadata)
        elif isinstance(event, dg.AssetCheckEvaluation) and event.asset_check_key in checks:
            yield dg.AssetCheckResult(
                asset_key=event.asset_key,
                check_name=event.check_name,
                passed=event.passed,
                severity=event.severity,
                metadata=event.metadata,
            )
        elif isinstance(event, dg.AssetCheckEvaluation):
            yield dg.AssetObservation(asset_key=event.asset_key, metadata=event.metadata)
        else:
            yield event
