"""Carry the record of what is materialized from the asset keys before the rename
(raw/{dataset}, lake/{dataset}, raw|lake/taxi_zone_lookup) to the keys now (keys.py).

    DAGSTER_HOME=... python -m taxi_assets.migrate_keys

Dagster keeps history per asset key, so after the rename the UI (and the sensors, which
look for the months raw has) would see nothing materialized and fetch every month
again. For each month an old key had, this records a materialization of the new key
carrying the old one's latest metadata (plus `migrated_from`); months the new key already
has are left alone, so running it twice changes nothing. The lake files themselves never
moved. The old keys' history stays; `dagster asset wipe` removes it if you want.
"""

from __future__ import annotations

import dagster as dg

from taxi_assets.defs.assets.keys import legacy_keys

PAGE = 1000


def latest_by_partition(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str | None, dg.EventLogRecord]:
    """The newest materialization record of each partition of `key` (None: unpartitioned)."""
    found: dict[str | None, dg.EventLogRecord] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(key, limit=PAGE, cursor=cursor)
        for record in page.records:  # newest first
            found.setdefault(record.partition_key, record)
        if not page.has_more:
            return found
        cursor = page.cursor


def migrate(instance: dg.DagsterInstance) -> dict[str, int]:
    """{new key: months (or 1 for an unpartitioned asset) recorded} for every renamed asset."""
    recorded = {}
    for old, new in legacy_keys().items():
        have = latest_by_partition(instance, new)
        count = 0
        for partition, record in sorted(latest_by_partition(instance, old).items(), key=lambda p: p[0] or ""):
            if partition in have:
                continue
            metadata = {**record.asset_materialization.metadata, "migrated_from": old.to_user_string()}
            instance.report_runless_asset_event(dg.AssetMaterialization(new, partition=partition, metadata=metadata))
            count += 1
        if count:
            recorded[new.to_user_string()] = count
    return recorded


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        recorded = migrate(instance)
    for key, count in recorded.items():
        print(f"{key}: recorded {count} materialization(s) from its old key")
    if not recorded:
        print("nothing to migrate")


if __name__ == "__main__":
    main()
