"""Monthly partitions, one definition per dataset's first published month."""

from __future__ import annotations

from functools import cache

import dagster as dg

from taxi_assets.datasets import DatasetSpec


@cache
def _monthly(start: str) -> dg.MonthlyPartitionsDefinition:
    return dg.MonthlyPartitionsDefinition(start_date=start)


def monthly_partitions(spec: DatasetSpec) -> dg.MonthlyPartitionsDefinition:
    return _monthly(spec.first_partition)
