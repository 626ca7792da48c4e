"""The Dagster definitions: every module under taxi_assets/defs/ contributes its own
(`@dg.definitions`), loaded the way `dg` loads a project ([tool.dg] in pyproject.toml).
`dagster dev -w workspace.yaml` and `dagster code-server start -m taxi_assets.definitions`
load `defs` from here.

Every run worker, sensor tick and code server pays this import, so it loads the defs folder
only: `dg.load_from_defs_folder` would also build the catalog of every installed component
type (for `dg scaffold` and the UI's component editor), which imports each installed
Dagster integration whole (dagster-dbt with dbt-core, dagster-gcp with BigQuery and pandas).
The project has no YAML components, so it has no use for that catalog; the defs folder is
the same tree, walked the same way."""

import warnings
from pathlib import Path

import dagster as dg

from taxi_assets.defs.policies import apply_policies


def load_definitions() -> dg.Definitions:
    """The project's definitions, from the environment as it is now (defs/resources.py)."""
    tree = dg.ComponentTree.for_project(path_within_project=Path(__file__).parent)
    with warnings.catch_warnings():
        # The warnings load_from_defs_folder silences too (Dagster's suppress_dagster_warnings):
        # loading plain Python defs modules is "preview", backfill policies "beta", ...
        for category in (dg.PreviewWarning, dg.BetaWarning, dg.SupersessionWarning, DeprecationWarning):
            warnings.simplefilter("ignore", category)
        folder = tree.build_defs(tree.defs_module_path)
        # Freshness and automation once for every asset of every layer (mapping specs is "preview").
        return apply_policies(dg.Definitions.merge(folder, dg.Definitions(component_tree=tree)))


defs = load_definitions()
