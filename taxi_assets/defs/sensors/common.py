"""What the source sensors share: their limits, their JSON cursor, their run tags."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import dagster as dg

from taxi_assets.source.http import FileVersion
from taxi_assets.spec.datasets import DATASETS, DatasetSpec
from taxi_assets.spec.months import normalize_month

# Read by defs/resources.py (load_settings) when the definitions load.
INTERVAL_ENV = "TAXI_SOURCE_SENSOR_INTERVAL_S"
START_MONTH_ENV = "TAXI_SENSOR_START_MONTH"


@dataclass(frozen=True)
class WatchLimits:
    """How hard a source sensor may look per tick."""

    # Publication is monthly: probing hourly finds a new file soon enough and costs a few HEADs.
    interval_s: int = 3600
    max_probes: int = 12  # HEAD requests per tick
    max_runs: int = 3  # run requests per tick
    # The new-month sensor stops after this many unpublished months in a row.
    lookahead: int = 3
    # Months below the latest known one that were not published when the walk passed them
    # (published late): re-probed up to `lookback` months back, `max_late_probes` per tick in turn.
    lookback: int = 12
    max_late_probes: int = 2
    # Where the new-month sensor starts when no month is known (default: the dataset's first month).
    start_month: str | None = field(default=None)
    # The same per dataset (dataset, month) pairs; a dataset named here ignores start_month.
    start_months: tuple[tuple[str, str], ...] = ()

    def start_for(self, spec: DatasetSpec) -> str:
        """The month the new-month sensor of `spec` starts from: never before the dataset's first
        month (a start before it would spend ticks probing months that cannot exist)."""
        start = dict(self.start_months).get(spec.name) or self.start_month or spec.first_month
        return max(start, spec.first_month)


def parse_start_months(value: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """TAXI_SENSOR_START_MONTH: one month for every dataset (`2021-01`), and/or a month per
    dataset (`yellow=2009-03 green=2014-08`, separated by spaces or commas)."""
    common, per_dataset = None, {}
    for item in value.replace(",", " ").split():
        name, _, month = item.rpartition("=")
        if name and name not in DATASETS:
            raise ValueError(f"{START_MONTH_ENV}: unknown dataset {name!r} in {value!r}; known: {', '.join(DATASETS)}")
        if name:
            per_dataset[name] = normalize_month(month)
        else:
            common = normalize_month(month)
    return common, tuple(sorted(per_dataset.items()))


def start_months_value(starts: Mapping[str, str]) -> str:
    """The TAXI_SENSOR_START_MONTH value of a month per dataset."""
    return " ".join(f"{name}={month}" for name, month in sorted(starts.items()))


def load_cursor(context: dg.SensorEvaluationContext) -> dict:
    return json.loads(context.cursor) if context.cursor else {}


def dump_cursor(state: dict) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def describe(version: FileVersion | None) -> str:
    """A file version as a run tag value."""
    if version is None:
        return "unknown"
    return f"etag={version.etag}; last_modified={version.last_modified}; content_length={version.content_length}"
