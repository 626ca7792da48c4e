"""Monthly partitions, one definition per dataset's first published month."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import dagster as dg

from taxi_assets.datasets import DatasetSpec


@cache
def _monthly(start: str) -> dg.MonthlyPartitionsDefinition:
    return dg.MonthlyPartitionsDefinition(start_date=start)


def monthly_partitions(spec: DatasetSpec) -> dg.MonthlyPartitionsDefinition:
    return _monthly(spec.first_partition)


def common_monthly_partitions(specs: Iterable[DatasetSpec]) -> dg.MonthlyPartitionsDefinition:
    """The months every one of `specs` has: from the latest first month."""
    return _monthly(max(spec.first_partition for spec in specs))
