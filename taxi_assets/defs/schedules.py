"""The monthly schedule, one per dataset: the latest month that should be published.

A schedule rather than an AutomationCondition: the trigger is the calendar (the
source publishes on its own clock, which no asset in the graph observes), the
target is a whole raw -> lake -> warehouse month that is *not* simply the newest
calendar month, and a schedule's ticks, run keys and evaluation for a given date
are plain to see and test. It runs on the 5th as a safety net: the sensors
usually have the month earlier, and then the tick skips it.
"""

import dagster as dg

from taxi_assets.defs.assets.keys import warehouse_key
from taxi_assets.defs.jobs import TRIGGER_TAG, month_job
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.spec.partitions import monthly_partitions

SCHEDULE_CRON = "0 6 5 * *"  # 06:00 UTC on the 5th of each month


def build_monthly_schedule(spec: DatasetSpec) -> dg.ScheduleDefinition:
    partitions = monthly_partitions(spec)

    @dg.schedule(
        name=f"{spec.name}_monthly_schedule",
        cron_schedule=SCHEDULE_CRON,
        execution_timezone="UTC",
        job=month_job(spec.name),
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Monthly: raw -> lake -> warehouse for the latest {spec.name} month that should be published.",
    )
    def monthly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        # The partitions end at the latest publishable month (partitions.py).
        keys = partitions.get_partition_keys(current_time=context.scheduled_execution_time)
        if not keys:
            return dg.SkipReason(f"no {spec.name} month should be published yet")
        if keys[-1] in context.instance.get_materialized_partitions(warehouse_key(spec)):
            return dg.SkipReason(f"{spec.name} {normalize_month(keys[-1])} is already in the warehouse")
        return dg.RunRequest(partition_key=keys[-1], run_key=keys[-1], tags={TRIGGER_TAG: "schedule"})

    return monthly_schedule


@dg.definitions
def schedules() -> dg.Definitions:
    return dg.Definitions(schedules=[build_monthly_schedule(spec) for spec in DATASETS.values()])
