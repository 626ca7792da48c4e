"""Freshness: a FreshnessPolicy on every monthly asset, and per-month freshness checks.

The source publishes one month per month, `publication_lag_months` after it ends,
and the latest partition is that month (see partitions.py). So:
- every monthly layer (and the mart) should get a new materialization about monthly: the policy warns
  after 35 days without one and fails after 45 (a month plus two weeks of slack
  for the source's irregular publication dates);
- by the 15th of each month the latest partition should be in every layer: the
  time-partition freshness checks (run by their sensor) look for exactly that month.
The zone lookup is unpartitioned and changes rarely (nothing refreshes it on a
clock), so it has neither.
"""

import warnings
from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

FRESHNESS_FAIL_WINDOW = timedelta(days=45)
FRESHNESS_WARN_WINDOW = timedelta(days=35)
# Midday of the 15th: the monthly schedule (the 5th) and the sensors have had ten days.
PARTITION_DEADLINE_CRON = "0 12 15 * *"
FRESHNESS_SENSOR_NAME = "freshness_checks_sensor"
FRESHNESS_SENSOR_INTERVAL_S = 3600


def freshness_policy() -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(fail_window=FRESHNESS_FAIL_WINDOW, warn_window=FRESHNESS_WARN_WINDOW)


def is_monthly(asset: dg.AssetsDefinition) -> bool:
    """Monthly assets follow the source's publication; the unpartitioned zone lookup does not."""
    return isinstance(asset.partitions_def, dg.TimeWindowPartitionsDefinition)


def with_freshness_policy(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The assets, the monthly ones with the freshness policy."""
    policy = freshness_policy()
    return [
        dg.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy), [a])[0]
        if is_monthly(a)
        else a
        for a in assets
    ]


def build_partition_freshness_checks(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """One per-month freshness check for every monthly asset."""
    # Superseded in Dagster by FreshnessPolicy, which judges an asset as a whole; only
    # these checks say which *month* is overdue, so both are used.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return list(
            dg.build_time_partition_freshness_checks(
                assets=[a for a in assets if is_monthly(a)],
                deadline_cron=PARTITION_DEADLINE_CRON,
                severity=dg.AssetCheckSeverity.WARN,
            )
        )


def build_freshness_sensor(checks: Sequence[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=list(checks),
            name=FRESHNESS_SENSOR_NAME,
            minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL_S,
            default_status=dg.DefaultSensorStatus.STOPPED,
        )
