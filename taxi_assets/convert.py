"""A month's source file (CSV.gz or Parquet) -> Parquet in the dataset's canonical schema.

This is the lake layer's code path and also a command, so anyone can time it:
    python -m taxi_assets.convert --dataset yellow --month 2021-01 IN.csv.gz OUT.parquet

The file is streamed batch by batch (bounded memory), with types declared by the
spec (never inferred) and column names normalised across years.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from taxi_assets.datasets import SOURCE_MONTH_COLUMN, DatasetSpec, get_spec
from taxi_assets.errors import ConversionError, SchemaError
from taxi_assets.months import month_bounds, normalize_month

CSV_BLOCK_SIZE = 16 << 20
PARQUET_COMPRESSION = "zstd"


@dataclass
class ConvertResult:
    dataset: str
    month: str
    rows: int = 0
    outside_month_rows: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    filled_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


def resolve_columns(spec: DatasetSpec, source_names: list[str], label: str):
    """Map source column names onto the spec: exact, alias, then case-insensitive.

    Returns (source -> canonical, extra source columns, optional columns to fill).
    Extra columns are reported and dropped: the lake holds the declared schema only.
    """
    lookup: dict[str, str] = {}
    for column in spec.columns:
        for name in (column.name, *column.aliases):
            lookup.setdefault(name.lower(), column.name)
    mapping: dict[str, str] = {}
    extra: list[str] = []
    for name in source_names:
        canonical = lookup.get(name.strip().lower())
        if canonical is None or canonical in mapping.values():
            extra.append(name)
        else:
            mapping[name] = canonical
    present = set(mapping.values())
    missing = [c.name for c in spec.columns if c.required and c.name not in present]
    if missing:
        raise SchemaError(
            f"{label}: required column(s) {', '.join(missing)} missing "
            f"(file has {', '.join(source_names)})"
        )
    fill = [c.name for c in spec.columns if c.name not in present]
    return mapping, extra, fill


def _csv_header(path: Path, label: str) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            line = f.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{label}: cannot read header of {path}: {exc}") from None
    if not line.strip():
        raise ConversionError(f"{label}: {path} is empty (no header)")
    # The header is one CSV record; the csv module handles its quoting.
    return next(csv.reader([line]))


def _csv_batches(spec: DatasetSpec, path: Path, label: str):
    header = _csv_header(path, label)
    mapping, extra, fill = resolve_columns(spec, header, label)
    types = {src: spec.column(dst).type for src, dst in mapping.items()}
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_SIZE, use_threads=True),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=list(mapping),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    return _renamed(reader, mapping), (mapping, extra, fill)


def _parquet_batches(spec: DatasetSpec, path: Path, label: str):
    pf = pq.ParquetFile(path)
    mapping, extra, fill = resolve_columns(spec, pf.schema_arrow.names, label)
    batches = pf.iter_batches(batch_size=256_000, columns=list(mapping))
    return _renamed(batches, mapping), (mapping, extra, fill)


def _renamed(batches, mapping: dict[str, str]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield batch.rename_columns([mapping[n] for n in batch.schema.names])


def _conform(batch: pa.RecordBatch, spec: DatasetSpec, fill: list[str], month_day: int, label: str) -> pa.Table:
    """Cast to the declared types, add missing optional columns and the source month."""
    n = batch.num_rows
    arrays = []
    for column in spec.columns:
        if column.name in fill:
            arrays.append(pa.nulls(n, column.type))
            continue
        array = batch.column(column.name)
        if array.type != column.type:
            try:
                array = array.cast(column.type)  # safe: fails rather than truncating
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ConversionError(
                    f"{label}: column {column.name} ({array.type}) cannot be read as {column.type}: {exc}"
                ) from None
        arrays.append(array)
    arrays.append(pa.array(np.full(n, month_day, dtype=np.int32)).view(pa.date32()))
    return pa.Table.from_arrays(arrays, schema=spec.arrow_schema())


def convert(spec: DatasetSpec, month: str, src: Path, dst: Path) -> ConvertResult:
    """Convert src to dst (Parquet, zstd). dst is written in place: callers stage it."""
    month = normalize_month(month)
    label = f"{spec.name} {month}"
    started = time.monotonic()
    start, end = month_bounds(month)
    month_day = (dt.date.fromisoformat(f"{month}-01") - dt.date(1970, 1, 1)).days
    lo = pa.scalar(dt.datetime.combine(start, dt.time()), pa.timestamp("us"))
    hi = pa.scalar(dt.datetime.combine(end, dt.time()), pa.timestamp("us"))

    src = Path(src)
    if src.name.lower().endswith(".parquet"):
        batches, (mapping, extra, fill) = _parquet_batches(spec, src, label)
    else:
        batches, (mapping, extra, fill) = _csv_batches(spec, src, label)

    result = ConvertResult(
        dataset=spec.name,
        month=month,
        renamed={s: d for s, d in mapping.items() if s != d},
        extra_columns=extra,
        filled_columns=fill,
    )
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    schema = spec.arrow_schema()
    try:
        with pq.ParquetWriter(dst, schema, compression=PARQUET_COMPRESSION) as writer:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                table = _conform(batch, spec, fill, month_day, label)
                pickup = table.column(spec.pickup_column)
                outside = pc.or_(pc.less(pickup, lo), pc.greater_equal(pickup, hi))
                result.outside_month_rows += pc.sum(outside).as_py() or 0
                result.rows += table.num_rows
                writer.write_table(table)
    except ConversionError:
        raise
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise ConversionError(f"{label}: cannot convert {src}: {exc}") from None
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taxi_assets.convert", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--month", required=True, help="YYYY-MM")
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    args = parser.parse_args(argv)
    result = convert(get_spec(args.dataset), args.month, args.src, args.dst)
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
