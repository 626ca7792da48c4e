"""The dbt project's models and tests as Dagster asset specs and asset check specs, read from
the manifest that `make install` prepares (project.prepare_manifest), as dagster-dbt's
DagsterDbtTranslator builds them (its defaults: key, deps, description with the raw SQL,
metadata, tags, kinds, code version; each dbt test on a model is a check on it, blocking when
its severity is `error`, with the test's other parents as additional deps).

Not DbtProject/`@dbt_assets`: importing dagster-dbt loads dbt-core, more than doubling the definitions load.

dagster-dbt is imported only by the step that runs dbt (runner.py), which maps dbt's events to
these keys with the same `get_asset_key`; test_dbt_specs.py builds the graph both ways and
compares every spec, so a dagster-dbt upgrade that changes its translation shows there.
Not covered (the project has none): seeds and snapshots as upstreams of tests on sources,
ephemeral models, singular tests with several parents (dagster-dbt's `meta.dagster.ref`).
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

ASSET_RESOURCE_TYPES = ("model", "seed", "snapshot")
UNIQUE_ID_KEY = "dagster_dbt/unique_id"  # dagster-dbt's name: its selection code reads it
MATERIALIZATION_KEY = "dagster-dbt/materialization_type"
# dagster-dbt's op tags: the dbt selection an assets definition builds when wholly selected.
SELECT_TAG, EXCLUDE_TAG = "dagster_dbt/select", "dagster_dbt/exclude"
_TAG_KEY = re.compile(r"^[\w.\-/]{1,63}$")

Props = Mapping[str, Any]


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_bytes())


class ManifestTranslator:
    """dagster-dbt's DagsterDbtTranslator defaults on a manifest; subclass to customise
    (same method names as dagster-dbt's, so the two read alike)."""

    def __init__(self, manifest: Mapping[str, Any]):
        self.manifest = manifest
        self.adapter_type = manifest.get("metadata", {}).get("adapter_type") or "dbt"

    def props(self, unique_id: str) -> Props:
        return self.manifest["nodes"].get(unique_id) or self.manifest["sources"][unique_id]

    # ------------------------------------------------------------------ overridable
    def get_asset_key(self, props: Props) -> dg.AssetKey:
        """meta.dagster.asset_key, else a source's [source name, table], a model's [schema?, name]."""
        meta = props.get("config", {}).get("meta", {}) or props.get("meta", {})
        if configured := meta.get("dagster", {}).get("asset_key"):
            return dg.AssetKey(configured)
        if props["resource_type"] == "source":
            return dg.AssetKey([props["source_name"], props["name"]])
        if props.get("version"):
            return dg.AssetKey([props["alias"]])
        schema = props["config"].get("schema")
        return dg.AssetKey([schema, props["name"]] if schema is not None else [props["name"]])

    def get_group_name(self, props: Props) -> str | None:
        return None

    def get_description(self, props: Props) -> str:
        code = textwrap.indent(props.get("raw_sql") or props.get("raw_code", ""), "    ")
        title = props.get("description") or f"dbt {props['resource_type']} {props['name']}"
        return f"{title}\n\n#### Raw SQL:\n```sql\n{code}\n```"

    def get_metadata(self, props: Props) -> dict[str, Any]:
        columns = props.get("columns", {})
        schema = (
            dg.TableSchema(
                columns=[
                    dg.TableColumn(
                        name=name,
                        type=info.get("data_type") or "?",
                        description=info.get("description"),
                        tags={tag: "" for tag in info.get("tags", [])},
                    )
                    for name, info in columns.items()
                ]
            )
            if columns
            else None
        )
        parts = [props.get("database"), props.get("schema"), props.get("alias")]
        if props.get("resource_type") == "source":
            parts.append(props.get("name"))
        relation = ".".join(p for p in parts if p) or None
        materialized = props.get("config", {}).get("materialized")
        metadata: dict[str, Any] = {MATERIALIZATION_KEY: materialized} if materialized else {}
        if schema is not None:
            metadata["dagster/column_schema"] = schema
        if relation:
            metadata["dagster/table_name"] = relation
        return metadata

    def get_tags(self, props: Props) -> dict[str, str]:
        return {tag: "" for tag in props.get("tags", []) if _TAG_KEY.match(tag)}

    def get_code_version(self, props: Props) -> str | None:
        code = props.get("raw_sql") or props.get("raw_code")
        return hashlib.sha1(code.encode()).hexdigest() if code else props.get("checksum", {}).get("checksum")

    def get_owners(self, props: Props) -> list[str] | None:
        owners = props.get("meta", {}).get("dagster", {}).get("owners")
        return list(owners) if owners else None

    def get_automation_condition(self, props: Props) -> dg.AutomationCondition | None:
        return None

    def get_partition_mapping(self, props: Props, parent: Props) -> dg.PartitionMapping | None:
        return None

    # ------------------------------------------------------------------ specs
    def get_asset_spec(self, unique_id: str) -> dg.AssetSpec:
        props = self.props(unique_id)
        deps = []
        for parent_id in dict.fromkeys(props.get("depends_on", {}).get("nodes", [])):
            parent = self.props(parent_id)
            if parent["resource_type"] not in (*ASSET_RESOURCE_TYPES, "source"):
                continue
            # A source's table metadata goes on the dep (dagster-dbt's enable_source_metadata).
            source_metadata = self._table_metadata(parent) if parent_id.startswith("source") else None
            deps.append(
                dg.AssetDep(
                    self.get_asset_key(parent),
                    partition_mapping=self.get_partition_mapping(props, parent),
                    metadata=source_metadata,
                )
            )
        return dg.AssetSpec(
            key=self.get_asset_key(props),
            deps=deps,
            description=self.get_description(props),
            metadata={**self._table_metadata(props), UNIQUE_ID_KEY: unique_id},
            skippable=True,
            group_name=self.get_group_name(props),
            code_version=self.get_code_version(props),
            automation_condition=self.get_automation_condition(props),
            owners=self.get_owners(props),
            tags=self.get_tags(props),
            kinds={"dbt", self.adapter_type},
        )

    def _table_metadata(self, props: Props) -> dict[str, Any]:
        return {**self.get_metadata(props), "dagster/storage_kind": self.adapter_type}

    def get_asset_check_spec(self, asset_key: dg.AssetKey, test_id: str) -> dg.AssetCheckSpec:
        test = self.props(test_id)
        others = {self.get_asset_key(self.props(p)) for p in self.manifest["parent_map"].get(test_id, [])}
        severity = (test.get("config", {}).get("severity") or "error").lower()
        return dg.AssetCheckSpec(
            name=test["name"],
            asset=asset_key,
            description=test.get("meta", {}).get("description"),
            additional_deps=others - {asset_key},
            metadata={UNIQUE_ID_KEY: test_id},
            blocking=severity == "error",
        )

    def build_specs(self, select: Callable[[Props], bool]) -> tuple[list[dg.AssetSpec], list[dg.AssetCheckSpec]]:
        """The models (seeds, snapshots) that `select` takes, and the dbt tests on them as checks
        (what dbt's default, eager, indirect selection runs with them)."""
        specs, checks = [], []
        for unique_id, props in self.manifest["nodes"].items():
            if props["resource_type"] not in ASSET_RESOURCE_TYPES or not select(props):
                continue
            if props.get("config", {}).get("materialized") == "ephemeral":
                continue
            spec = self.get_asset_spec(unique_id)
            specs.append(spec)
            for child_id in self.manifest["child_map"].get(unique_id, []):
                child = self.props(child_id)
                if child["resource_type"] == "test" and self._tested_node(child) == unique_id:
                    checks.append(self.get_asset_check_spec(spec.key, child_id))
        return specs, checks

    @staticmethod
    def _tested_node(test: Props) -> str | None:
        """The node a test is a check on: a generic test's attached node, or a singular test's one parent."""
        parents = test["depends_on"]["nodes"]
        return parents[0] if len(set(parents)) == 1 else test.get("attached_node")


def dbt_name(props: Props) -> str:
    """A node's name for dbt's --select (its fully qualified name)."""
    return ".".join(props["fqn"])
