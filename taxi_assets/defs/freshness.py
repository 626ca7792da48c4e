"""Freshness of a monthly feed, one rule shown one way: a `FreshnessPolicy.cron` on
every monthly asset.

The source publishes one month per month, `publication_lag_months` after it ends;
on the 1st of each month that newest publishable month becomes the last partition
(partitions.py), and the monthly schedule (the 5th) and the sensors load it. So an
asset is fresh when it was materialized between the 1st of the month 00:00 UTC and
the 15th 12:00 UTC (the deadline); it fails when a deadline passes with nothing loaded
since the 1st, and passes again once something is.

Dagster evaluates the policy per asset, not per partition: a backfill of an old month
inside the window also counts. Per-month freshness checks (which name the month) were
dropped because they disagreed with the policy on the same page; the partitions view
shows which months are in.
The zone lookup is unpartitioned and changes rarely (nothing refreshes it on a clock),
so it has no policy.
"""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

# Midday of the 15th: the monthly schedule (the 5th) and the sensors have had ten days.
DEADLINE_CRON = "0 12 15 * *"
# The window opens on the 1st at 00:00 UTC, when the newest month becomes a partition.
WINDOW = timedelta(days=14, hours=12)
RULE = (
    "Freshness: the newest publishable month is loaded between the 1st and the 15th of each month "
    "(12:00 UTC): the asset fails its freshness policy when the 15th passes with no materialization "
    "since the 1st."
)


def freshness_policy() -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.cron(deadline_cron=DEADLINE_CRON, lower_bound_delta=WINDOW, timezone="UTC")


def is_monthly(asset: dg.AssetsDefinition) -> bool:
    """Monthly assets follow the source's publication; the unpartitioned zone lookup does not."""
    return isinstance(asset.partitions_def, dg.TimeWindowPartitionsDefinition)


def with_freshness_policy(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The assets, the monthly ones with the freshness policy and its rule in their description."""
    policy = freshness_policy()

    def fresh(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(freshness_policy=policy, description=f"{spec.description}\n\n{RULE}")

    return [dg.map_asset_specs(fresh, [a])[0] if is_monthly(a) else a for a in assets]
