"""Freshness and automation, applied once to every asset where the definitions are assembled
(taxi_assets/definitions.py: `apply_policies`), not by each layer.

Freshness of a monthly feed, one rule shown one way: a `FreshnessPolicy.cron` on
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

from datetime import timedelta

import dagster as dg

from taxi_assets.defs.assets.keys import mart_key, shapes_key

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


MART_GROUP = "marts"
DIM_ZONES_KEY = mart_key("dim_zones")

# What the automation sensor does for the dbt models, in both orders: data loaded before it is
# switched on counts (Dagster's since_last_handled() forgets on its first tick what was already
# missing; handled here is only "requested" or "updated"). A month's model runs once
# - it is missing, or an input of it was updated, since it was last requested or updated;
# - the month has data: an input of that month is there (or requested now); a feed's staging
#   view is not built for a month that feed does not have (fact_trips reads it as empty);
# - nothing the month needs is missing: an input that should have the month (a feed's table
#   that has it, its staging view, fact_trips) is there or requested in this tick (the same
#   run, where dbt builds in order), and dim_zones is built;
# - nothing of it is in progress.
# A failed run is not retried until an input is updated again (no loop of failing runs).
# New zones or shapes alone do not rebuild every month of history: backfill the marts then.
_HANDLED = (dg.AutomationCondition.newly_requested() | dg.AutomationCondition.newly_updated()).with_label("handled")
_EXISTS = (dg.AutomationCondition.missing() | ~dg.AutomationCondition.missing()).with_label("exists")
_ZONES_AND_SHAPES = dg.AssetSelection.assets(DIM_ZONES_KEY, shapes_key("lake"))
_RUNNING = dg.AutomationCondition.any_deps_in_progress() | dg.AutomationCondition.in_progress()

MONTH_COMPLETE = (
    (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated().ignore(_ZONES_AND_SHAPES)
    ).since(_HANDLED)
    & dg.AutomationCondition.any_deps_match(
        ~dg.AutomationCondition.missing() | dg.AutomationCondition.will_be_requested()
    )
    .ignore(_ZONES_AND_SHAPES)
    .with_label("month_has_data")
    # The shapes only draw trips_by_zone's map (which says so when they are missing): no reason to wait.
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.missing()
        & ~dg.AutomationCondition.will_be_requested()
        & dg.AutomationCondition.any_deps_match(_EXISTS)
    )
    .ignore(_ZONES_AND_SHAPES)
    .with_label("any_input_of_the_month_missing")
    # dim_zones is built by a run of its own, which the month's run would not wait for: built first.
    & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.missing())
    .allow(dg.AssetSelection.assets(DIM_ZONES_KEY))
    .with_label("dim_zones_missing")
    & ~_RUNNING
).with_label("month_complete")

# dim_zones: built when it is missing or the zone lookup was loaded, whichever came first.
ZONES_LOADED = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since(_HANDLED)
    & ~dg.AutomationCondition.any_deps_missing()
    & ~_RUNNING
).with_label("zones_loaded")


def is_monthly(spec: dg.AssetSpec) -> bool:
    """Monthly assets follow the source's publication; the unpartitioned zone lookup does not."""
    return isinstance(spec.partitions_def, dg.TimeWindowPartitionsDefinition)


def with_policies(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The spec with its freshness policy (monthly assets, the rule in their description) and,
    for the dbt models, the condition the automation sensor builds them on."""
    if is_monthly(spec):
        spec = spec.replace_attributes(freshness_policy=freshness_policy(), description=f"{spec.description}\n\n{RULE}")
    if spec.group_name == MART_GROUP:
        spec = spec.replace_attributes(automation_condition=MONTH_COMPLETE if is_monthly(spec) else ZONES_LOADED)
    return spec


def apply_policies(defs: dg.Definitions) -> dg.Definitions:
    return defs.map_asset_specs(func=with_policies)
