"""A month's source file (CSV.gz or Parquet) -> Parquet in the dataset's canonical schema.

This is the lake layer's code path and also a command, so anyone can time it:
    python -m taxi_assets.convert --dataset yellow --month 2021-01 IN.csv.gz OUT.parquet

The file is streamed (memory stays flat whatever the month's size), with types
declared by the spec (never inferred) and column names normalised across years.
Why it is shaped this way (figures in the README, `make bench`):
- the CSV reader is given the spec's names, order and types, so its batches are
  already the lake schema: no inference, no casts, absent optional columns come
  out as typed nulls;
- gzip is inflated by ISA-L on its own thread, beside Arrow's parser (zlib
  inflation alone is about a fifth of DuckDB's whole conversion time);
- batches are gathered into row groups that a writer thread encodes while the
  next ones are parsed;
- CSV blocks and row groups are small, and freed memory goes back at once
  (jemalloc, decay 0): Arrow's streaming reader reads up to 32 blocks ahead;
- nothing here makes pyarrow import pandas (see outside_month_rows).
A malformed CSV row stops the fast path with UnreadableRowError (see convert).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from isal import igzip, igzip_threaded
from isal.isal_zlib import error as IsalError

from taxi_assets import eras
from taxi_assets.datasets import SOURCE_MONTH_COLUMN, DatasetSpec, get_spec
from taxi_assets.errors import ConversionError, SchemaError, UnreadableRowError
from taxi_assets.months import month_bounds, normalize_month

CSV_BLOCK_SIZE = 256 << 10
INFLATE_BLOCK_SIZE = 256 << 10
ROW_GROUP_ROWS = 64 << 10
PARQUET_BATCH_ROWS = 64 << 10
PARQUET_COMPRESSION = "zstd"  # at Arrow's default level (1): 3 is 3% smaller and 10% slower

EPOCH = dt.date(1970, 1, 1)

# What a broken file raises while it is read: Arrow, the OS, ISA-L's inflater.
READ_ERRORS = (pa.ArrowException, OSError, EOFError, IsalError)


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
    row_groups: int = 0
    era: str | None = None
    # Text codes that became null: {column: {code: rows}} (eras.map_codes).
    unknown_codes: dict[str, dict[str, int]] = field(default_factory=dict)


def column_lookup(spec: DatasetSpec) -> dict[str, str]:
    """Source name (trimmed, lower case) -> canonical column: names and aliases."""
    lookup: dict[str, str] = {}
    for column in spec.columns:
        for name in (column.name, *column.aliases):
            lookup.setdefault(name.strip().lower(), column.name)
    return lookup


def era_columns(spec: DatasetSpec, era: eras.Era) -> list[str]:
    """The canonical columns an era's files carry."""
    lookup = column_lookup(spec)
    return [lookup[name.strip().lower()] for name in era.header if name.strip().lower() in lookup]


def resolve_columns(spec: DatasetSpec, source_names: list[str], label: str, era: eras.Era | None = None):
    """Map source column names onto the spec: exact, alias, then case-insensitive, after trimming.

    Returns (source -> canonical, extra source columns, optional columns to fill).
    Extra columns are reported and dropped: the lake holds the declared schema only.
    The month's era (when known) says which columns its files must have; otherwise
    the spec's required columns.
    """
    lookup = column_lookup(spec)
    mapping: dict[str, str] = {}
    extra: list[str] = []
    for name in source_names:
        canonical = lookup.get(name.strip().lower())
        if canonical is None or canonical in mapping.values():
            extra.append(name)
        else:
            mapping[name] = canonical
    present = set(mapping.values())
    if era:
        required = {c for c in era_columns(spec, era) if spec.column(c).required}
    else:  # a month no era covers: what every era has
        required = {c.name for c in spec.columns if c.required and not c.coordinate}
    missing = [c.name for c in spec.columns if c.name in required and c.name not in present]
    if missing:
        raise SchemaError(
            f"{label}: required column(s) {', '.join(missing)} missing "
            f"(file has {', '.join(source_names)})"
        )
    fill = [c.name for c in spec.columns if c.name not in present]
    return mapping, extra, fill


def memory_pool() -> pa.MemoryPool:
    """jemalloc told to hand freed pages back at once.

    Arrow's default (mimalloc) keeps tens of MiB of freed batches mapped, which is
    most of the difference between a flat 200 MiB and not.
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow build without jemalloc
        return pa.default_memory_pool()
    pa.jemalloc_set_decay_ms(0)
    return pool


def declared_schema(spec: DatasetSpec) -> pa.Schema:
    """The spec's columns as the readers deliver them (the lake schema before source_month)."""
    return pa.schema([pa.field(c.name, c.type) for c in spec.columns])


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def csv_header(path: Path, label: str) -> list[str]:
    """The header's names, padded with unnamed columns when the first record has more fields
    (older files end every row with empty fields the header does not name)."""
    opener = igzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            line = f.readline()
            first = f.readline()
            while first and not first.strip():  # a blank line after the header (2009-2014)
                first = f.readline()
    except (*READ_ERRORS, UnicodeDecodeError) as exc:
        raise ConversionError(f"{label}: cannot read header of {path}: {exc}") from None
    if not line.strip():
        raise ConversionError(f"{label}: {path} is empty (no header)")
    # The header is one CSV record; the csv module handles its quoting.
    names = next(csv.reader([line]))
    width = len(next(csv.reader([first]), [])) if first.strip() else len(names)
    return names + [f"__unnamed_{i}" for i in range(len(names), width)]


@contextmanager
def _csv_bytes(path: Path):
    """What Arrow's CSV reader reads: plain files directly, gzip inflated on a thread."""
    if not _is_gzip(path):
        yield str(path)
        return
    with igzip_threaded.open(path, "rb", threads=1, block_size=INFLATE_BLOCK_SIZE) as stream:
        yield stream


def csv_read_types(spec: DatasetSpec, era: eras.Era | None) -> dict[str, pa.DataType]:
    """Canonical column -> the type the CSV reader parses it as: declared, except text codes."""
    text = set(era.text_codes) if era else set()
    return {c.name: pa.string() if c.name in text else c.type for c in spec.columns}


def _csv_batches(
    spec: DatasetSpec,
    source,
    header: list[str],
    mapping: dict[str, str],
    label: str,
    pool: pa.MemoryPool,
    era: eras.Era | None = None,
    codes: eras.CodeCounts | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the declared columns, typed and named by the reader itself.

    A row Arrow cannot parse or convert raises UnreadableRowError, the point where a
    validating reader can take over.
    """
    # The file's columns under our names, so the reader emits the lake schema as is;
    # extra columns get names no spec column has and are not read.
    names = [mapping.get(name, f"__extra_{i}") for i, name in enumerate(header)]
    try:
        reader = pacsv.open_csv(
            source,
            memory_pool=pool,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=CSV_BLOCK_SIZE, use_threads=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=csv_read_types(spec, era),
                include_columns=[c.name for c in spec.columns],
                include_missing_columns=True,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        schema = declared_schema(spec)
        for batch in reader:
            yield eras.canonical_batch(spec, batch, schema, codes or eras.CodeCounts(), label)
    except pa.ArrowInvalid as exc:
        raise UnreadableRowError(f"{label}: {exc}") from None


def _parquet_batches(
    spec: DatasetSpec,
    pf: pq.ParquetFile,
    mapping: dict[str, str],
    label: str,
    codes: eras.CodeCounts,
    set_aside: eras.SetAside | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the declared columns: renamed, mapped and cast (official files differ by
    year, eras.canonical_batch), filled. Read a batch at a time, never the whole file."""
    schema = declared_schema(spec)
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(mapping), use_threads=False):
        batch = batch.rename_columns([mapping[n] for n in batch.schema.names])
        yield eras.canonical_batch(spec, batch, schema, codes, label, set_aside)


def _row_groups(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """Gather reader batches into tables of about ROW_GROUP_ROWS rows."""
    gathered: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        gathered.append(batch)
        rows += batch.num_rows
        if rows >= ROW_GROUP_ROWS:
            yield pa.Table.from_batches(gathered, schema)
            gathered, rows = [], 0
    if gathered:
        yield pa.Table.from_batches(gathered, schema)


def _micros(day: dt.date) -> int:
    return (day - EPOCH).days * 86_400_000_000


def outside_month_rows(pickup: pa.ChunkedArray, start: dt.date, end: dt.date) -> int:
    """Rows whose pickup (timestamp[us]) is before start or on/after end; nulls do not count.

    Read straight from the Arrow buffers with numpy: pyarrow.compute, pa.scalar and
    to_numpy would import pandas (pyarrow's lazy shim), 0.3-0.7 s and 45 MiB that the
    conversion has no other use for.
    """
    lo, hi = _micros(start), _micros(end)
    outside = 0
    for chunk in pickup.chunks:
        first, n = chunk.offset, len(chunk)
        validity, data = chunk.buffers()
        values = np.frombuffer(data, dtype=np.int64, count=first + n)[first:]
        hit = (values < lo) | (values >= hi)
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=first + n, bitorder="little")
            hit &= bits[first:].astype(bool)
        outside += int(np.count_nonzero(hit))
    return outside


def month_column(start: dt.date, rows: int) -> pa.Array:
    """source_month: the month's first day on every row (built from a buffer, see above)."""
    days = np.full(rows, (start - EPOCH).days, dtype=np.int32)
    return pa.Array.from_buffers(pa.date32(), rows, [None, pa.py_buffer(days)])


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Every column but the timestamps: nearly every trip has its own second, so their
    dictionaries overflow and fall back to plain pages that zstd packs worse (a yellow
    month: 30.4 MB with, 22.0 MB without, at the same speed)."""
    return [f.name for f in schema if not pa.types.is_timestamp(f.type)]


def _write(
    spec: DatasetSpec,
    month: str,
    batches: Iterable[pa.RecordBatch],
    dst: Path,
    result: ConvertResult,
    pool: pa.MemoryPool,
):
    """Write row groups (plus source_month) to dst, encoding each on a thread while the next is read."""
    start, end = month_bounds(month)
    schema = spec.arrow_schema()
    month_field = schema.field(SOURCE_MONTH_COLUMN)
    with (
        pq.ParquetWriter(
            dst, schema, memory_pool=pool, use_dictionary=dictionary_columns(schema), compression=PARQUET_COMPRESSION
        ) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-encode") as encoder,
    ):
        pending: Future | None = None
        for table in _row_groups(batches, declared_schema(spec)):
            result.outside_month_rows += outside_month_rows(table.column(spec.pickup_column), start, end)
            result.rows += table.num_rows
            table = table.append_column(month_field, month_column(start, table.num_rows))
            if pending is not None:
                pending.result()  # at most one row group in the encoder: memory stays flat
            pending = encoder.submit(writer.write_table, table, row_group_size=table.num_rows)
            result.row_groups += 1
        if pending is not None:
            pending.result()


def convert(
    spec: DatasetSpec, month: str, src: Path, dst: Path, set_aside: eras.SetAside | None = None
) -> ConvertResult:
    """Convert src to dst (Parquet, zstd). dst is written in place: callers stage it.

    Raises ConversionError (naming dataset, month and file) on anything unreadable;
    UnreadableRowError, a subclass, when a CSV row does not fit the declared schema.
    A Parquet value that does not fit its declared type goes to `set_aside` with its
    row (when given; else ConversionError).
    """
    month = normalize_month(month)
    label = f"{spec.name} {month}"
    started = time.monotonic()
    src, dst = Path(src), Path(dst)
    result = ConvertResult(dataset=spec.name, month=month)
    pool = memory_pool()
    dst.parent.mkdir(parents=True, exist_ok=True)
    is_parquet = src.name.lower().endswith(".parquet")
    era = spec.era(month, "parquet" if is_parquet else "csv")
    result.era = era.months if era else None
    codes = eras.CodeCounts()
    try:
        if is_parquet:
            # Unbuffered column chunks read page by page: a row group is never held whole.
            pf = pq.ParquetFile(src, memory_map=False, buffer_size=1 << 20, pre_buffer=False)
            names = pf.schema_arrow.names
        else:
            names = csv_header(src, label)
        mapping, result.extra_columns, result.filled_columns = resolve_columns(spec, names, label, era)
        result.extra_columns = [n for n in result.extra_columns if not n.startswith("__unnamed_")]
        result.renamed = {s: d for s, d in mapping.items() if s != d}
        if is_parquet:
            batches = _parquet_batches(spec, pf, mapping, f"{label} ({src})", codes, set_aside)
            _write(spec, month, batches, dst, result, pool)
        else:
            with _csv_bytes(src) as source:
                # An UnreadableRowError from here is where quarantine.py takes over.
                batches = _csv_batches(spec, source, names, mapping, f"{label} ({src})", pool, era, codes)
                _write(spec, month, batches, dst, result, pool)
        result.unknown_codes = codes.as_dict()
    except ConversionError:
        raise
    except READ_ERRORS as exc:
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
