"""Month keys: `YYYY-MM` in URLs and file names, `YYYY-MM-01` as Dagster partition keys."""

from __future__ import annotations

import datetime as dt


def normalize_month(value: str) -> str:
    """'2021-01' or '2021-01-01' -> '2021-01'."""
    try:
        day = dt.date.fromisoformat(value if len(value) > 7 else f"{value}-01")
    except ValueError:
        raise ValueError(f"not a month: {value!r} (expected YYYY-MM)") from None
    return f"{day.year:04d}-{day.month:02d}"


def partition_key(month: str) -> str:
    return f"{normalize_month(month)}-01"


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First day of the month and first day of the next month."""
    start = dt.date.fromisoformat(f"{normalize_month(month)}-01")
    end = dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start, end


def month_range(spec: str) -> list[str]:
    """'2021-01..2021-03' or '2021-01,2021-05' -> ['2021-01', ...] (inclusive)."""
    months: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if ".." in part:
            first, last = (normalize_month(p) for p in part.split(".."))
            current = first
            while current <= last:
                months.append(current)
                current = normalize_month(month_bounds(current)[1].isoformat())
        elif part:
            months.append(normalize_month(part))
    return months


def next_month(month: str) -> str:
    """'2021-12' -> '2022-01'."""
    return normalize_month(month_bounds(month)[1].isoformat())


def previous_month(month: str) -> str:
    """'2022-01' -> '2021-12'."""
    return normalize_month((month_bounds(month)[0] - dt.timedelta(days=1)).isoformat())
