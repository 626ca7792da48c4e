"""Monthly partitions, one definition per dataset's first published month and publication lag."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import dagster as dg

from taxi_assets.spec.datasets import DatasetSpec


@cache
def _monthly(start: str, lag_months: int) -> dg.MonthlyPartitionsDefinition:
    # A negative end_offset ends the partitions `lag_months` before the last complete
    # month, so months the source cannot have published yet are not offered, and the
    # schedule loads exactly the latest publishable month (see also defs/policies.py).
    return dg.MonthlyPartitionsDefinition(start_date=start, end_offset=-lag_months)


def monthly_partitions(spec: DatasetSpec) -> dg.MonthlyPartitionsDefinition:
    return _monthly(spec.first_partition, spec.publication_lag_months)


def any_monthly_partitions(specs: Iterable[DatasetSpec]) -> dg.MonthlyPartitionsDefinition:
    """The months any of `specs` has: from the earliest first month to the earliest last."""
    specs = list(specs)
    return _monthly(min(s.first_partition for s in specs), max(s.publication_lag_months for s in specs))
