"""The dbt models' assets built from the manifest without dagster-dbt (taxi_assets/analytics/manifest.py)
are the ones dagster-dbt's `@dbt_assets` builds from the same manifest with the project's
translation: same keys, deps and their partition mappings and metadata, descriptions,
metadata, tags, kinds, code versions, groups, automation conditions, partitions, checks."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pytest
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets

from taxi_assets.analytics.manifest import read_manifest
from taxi_assets.analytics.project import MANIFEST_PATH, PROJECT_DIR, prepare_manifest
from taxi_assets.defs.assets import marts
from taxi_assets.defs.assets.keys import shapes_key
from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.partitions import any_monthly_partitions

# dagster-dbt's own bookkeeping for DbtCliResource.cli(context=...): objects, not facts about the data.
RUNTIME_METADATA = {
    "dagster_dbt/manifest",
    "dagster_dbt/dagster_dbt_translator",
    "dagster_dbt/project",
    "dagster_dbt/project_id",
}


class Reference(DagsterDbtTranslator):
    """The project's translation on dagster-dbt's translator (as marts.py had it before)."""

    def __init__(self, ours: marts.TaxiDbtTranslator):
        super().__init__()
        self.ours = ours

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        spec = spec.replace_attributes(kinds={"dbt", self.ours.warehouse_kind})
        if spec.key == marts.TRIPS_BY_ZONE:
            spec = spec.merge_attributes(deps=[shapes_key("lake")])
        return spec

    def get_asset_key(self, props: Mapping[str, Any]) -> dg.AssetKey:
        return self.ours.get_asset_key(props)

    def get_group_name(self, props: Mapping[str, Any]) -> str:
        return marts.MART_GROUP

    def get_metadata(self, props: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**super().get_metadata(props), "dagster/table_name": props.get("alias") or props["name"]}

    def get_partition_mapping(self, props, parent):
        return self.ours.get_partition_mapping(props, parent)

    def get_automation_condition(self, props):
        return self.ours.get_automation_condition(props)


def reference_assets(warehouse_kind: str) -> dict[str, dg.AssetsDefinition]:
    translator = Reference(marts.TaxiDbtTranslator(read_manifest(MANIFEST_PATH), warehouse_kind))
    project = DbtProject(project_dir=PROJECT_DIR)

    @dbt_assets(
        manifest=MANIFEST_PATH,
        project=project,
        select=marts.MONTHLY_SELECT,
        name="dbt_monthly_models",
        partitions_def=any_monthly_partitions(DATASETS.values()),
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
        dagster_dbt_translator=translator,
    )
    def monthly(): ...

    @dbt_assets(
        manifest=MANIFEST_PATH,
        project=project,
        exclude=marts.MONTHLY_SELECT,
        name="dbt_zone_models",
        dagster_dbt_translator=translator,
    )
    def zones(): ...

    return {"dbt_monthly_models": monthly, "dbt_zone_models": zones}


def spec_facts(spec: dg.AssetSpec) -> dict:
    facts = spec._asdict() if hasattr(spec, "_asdict") else dict(vars(spec))
    facts["metadata"] = {k: v for k, v in spec.metadata.items() if k not in RUNTIME_METADATA}
    facts["deps"] = sorted(spec.deps, key=lambda d: d.asset_key.to_user_string())
    facts["tags"] = dict(spec.tags)
    return facts


@pytest.mark.parametrize("warehouse_kind", ["duckdb", "bigquery"])
def test_specs_from_the_manifest_equal_dagster_dbts(warehouse_kind):
    prepare_manifest()
    ours = {a.node_def.name: a for a in marts.build_dbt_assets(warehouse_kind)}
    reference = reference_assets(warehouse_kind)
    assert set(ours) == set(reference)
    for name, theirs in reference.items():
        mine = ours[name]
        assert {s.key for s in mine.specs} == {s.key for s in theirs.specs}, name
        for spec in theirs.specs:
            assert spec_facts(mine.get_asset_spec(spec.key)) == spec_facts(spec), spec.key
        assert sorted(mine.check_specs, key=lambda c: c.key.to_user_string()) == sorted(
            theirs.check_specs, key=lambda c: c.key.to_user_string()
        ), name
        assert mine.check_specs, name  # the dbt tests are checks
        assert mine.partitions_def == theirs.partitions_def
        assert mine.backfill_policy == theirs.backfill_policy
        assert mine.can_subset and theirs.can_subset
        assert mine.op.tags == theirs.op.tags
