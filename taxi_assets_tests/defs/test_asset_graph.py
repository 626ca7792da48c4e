"""The asset graph equals the committed snapshot (snapshots/asset_graph.json).

A change to the graph (a key, a partitioning, a group, a kind, a check, a dependency, a job,
sensor, schedule or resource) fails here until the snapshot is rewritten and committed with it:
    .venv/bin/python -m taxi_assets_tests.asset_graph
"""

import difflib
import os

from taxi_assets_tests.asset_graph import SNAPSHOT, current, dumps


def test_asset_graph_equals_the_committed_snapshot(monkeypatch):
    for name in [n for n in os.environ if n.startswith("TAXI_")]:
        monkeypatch.delenv(name)
    got, want = dumps(current()), SNAPSHOT.read_text()
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "committed", "now"))
    assert got == want, f"the asset graph changed; if intended, run python -m taxi_assets_tests.asset_graph\n{diff}"
