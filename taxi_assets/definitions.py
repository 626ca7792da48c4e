"""The Dagster definitions: every module under taxi_assets/defs/ contributes its own
(`@dg.definitions`), loaded the way `dg` loads a project ([tool.dg] in pyproject.toml).
`dagster dev -w workspace.yaml` and `dagster code-server start -m taxi_assets.definitions`
load `defs` from here."""

from pathlib import Path

import dagster as dg


def load_definitions() -> dg.Definitions:
    """The project's definitions, from the environment as it is now (defs/resources.py)."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


defs = load_definitions()
