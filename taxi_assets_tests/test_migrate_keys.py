"""The key rename: what an existing instance recorded under the old keys is carried to the new ones."""

import dagster as dg

from taxi_assets.datasets import DATASETS
from taxi_assets.defs.assets.keys import raw_key, zones_key
from taxi_assets.migrate_keys import migrate

YELLOW = DATASETS["yellow"]


def test_old_keys_history_is_carried_to_the_new_keys_once():
    instance = dg.DagsterInstance.ephemeral()
    old_raw = dg.AssetKey(["raw", "yellow"])
    for month, etag in (("2021-01-01", '"a"'), ("2021-02-01", '"b"'), ("2021-02-01", '"c"')):
        instance.report_runless_asset_event(dg.AssetMaterialization(old_raw, partition=month, metadata={"etag": etag}))
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["lake", "yellow"]), partition="2021-01-01"))
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["raw", "taxi_zone_lookup"])))

    assert migrate(instance) == {"raw/yellow_raw": 2, "lake/yellow_lake": 1, "raw/taxi_zone_lookup_raw": 1}
    assert instance.get_materialized_partitions(raw_key(YELLOW)) == {"2021-01-01", "2021-02-01"}
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_key(YELLOW), asset_partitions=["2021-02-01"]), limit=1
    ).records[0].asset_materialization.metadata
    # The newest version's metadata: what the republished-month sensor compares with.
    assert latest["etag"].value == '"c"' and latest["migrated_from"].value == "raw/yellow"
    assert instance.get_latest_materialization_event(zones_key("raw")) is not None
    assert migrate(instance) == {}  # a second run changes nothing
