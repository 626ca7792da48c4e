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
The CSV reader itself (fast and careful modes) is reader.py; a malformed CSV row
stops the fast mode with UnreadableRowError and quarantine.py reruns in careful mode.
Values that are not numbers (NaN, infinities) become nulls, counted per column.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taxi_assets.datasets import SOURCE_MONTH_COLUMN, DatasetSpec, get_spec
from taxi_assets.errors import ConversionError, StagingError
from taxi_assets.months import month_bounds, normalize_month
from taxi_assets.reader import (
    CAREFUL_BLOCK_SIZE,
    DECIMAL_INT,
    READ_ERRORS,
    careful_batches,
    csv_bytes,
    csv_header,
    fast_batches,
    resolve_columns,
)

ROW_GROUP_ROWS = 64 << 10
PARQUET_BATCH_ROWS = 64 << 10
PARQUET_COMPRESSION = "zstd"  # at Arrow's default level (1): 3 is 3% smaller and 10% slower
TLC_TIME_ZONE = "America/New_York"

EPOCH = dt.date(1970, 1, 1)


@dataclass
class ConvertResult:
    dataset: str
    month: str
    rows: int = 0
    outside_month_rows: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    filled_columns: list[str] = field(default_factory=list)
    # NaN/infinity in a number column: stored as null, counted here per column.
    non_finite_nulled: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    row_groups: int = 0


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


def _parquet_batches(
    spec: DatasetSpec, pf: pq.ParquetFile, mapping: dict[str, str], fill: list[str], label: str
) -> Iterator[pa.RecordBatch]:
    """Batches of the declared columns: renamed, cast (official files differ by year), filled."""
    schema = declared_schema(spec)
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(mapping)):
        batch = batch.rename_columns([mapping[n] for n in batch.schema.names])
        arrays = []
        for column in spec.columns:
            if column.name in fill:
                arrays.append(pa.nulls(batch.num_rows, column.type))
                continue
            array = batch.column(column.name)
            if pa.types.is_integer(column.type) and pa.types.is_string(array.type):
                _decimal_only(array, column.name, label)
            try:
                arrays.append(wall_clock(array).cast(column.type))  # safe: fails rather than truncating
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ConversionError(
                    f"{label}: column {column.name} ({array.type}) cannot be read as {column.type}: {exc}"
                ) from None
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _decimal_only(array: pa.Array, name: str, label: str) -> None:
    """Text read as integers must be decimal digits: a cast would read 0x1F as 31."""
    import pyarrow.compute as pc  # here only: it makes pyarrow import pandas

    other = pc.invert(pc.match_substring_regex(array, DECIMAL_INT))
    if pc.any(other).as_py():
        example = array.filter(pc.fill_null(other, False))[0].as_py()
        raise ConversionError(f"{label}: column {name} holds {example!r}, which is not a decimal integer")


def wall_clock(array: pa.Array) -> pa.Array:
    """A zone-aware timestamp column as New York wall-clock time, the way TLC records trips.

    A plain cast would keep the UTC instant and so shift every trip by the zone's offset.
    """
    if not (pa.types.is_timestamp(array.type) and array.type.tz):
        return array
    import pyarrow.compute as pc  # here only: it makes pyarrow import pandas

    return pc.local_timestamp(array.cast(pa.timestamp(array.type.unit, TLC_TIME_ZONE)))


def null_non_finite(table: pa.Table, counts: dict[str, int]) -> pa.Table:
    """NaN and infinities in float columns become nulls, counted per column in `counts`.

    A NaN would make every sum above it NaN. Read from the buffers with numpy (see
    outside_month_rows); a column without any is returned as it is.
    """
    for index, f in enumerate(table.schema):
        if not pa.types.is_float64(f.type):
            continue
        chunks, changed = [], False
        for chunk in table.column(index).chunks:
            validity, data = chunk.buffers()
            values = np.frombuffer(data, dtype=np.float64, count=chunk.offset + len(chunk))[chunk.offset :]
            finite = np.isfinite(values)
            if finite.all():
                chunks.append(chunk)
                continue
            valid = finite.copy()
            if validity is not None and chunk.null_count:
                bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=chunk.offset + len(chunk), bitorder="little")
                valid &= bits[chunk.offset :].astype(bool)
                nulled = int(np.count_nonzero(bits[chunk.offset :].astype(bool) & ~finite))
            else:
                nulled = int(np.count_nonzero(~finite))
            if nulled:
                counts[f.name] = counts.get(f.name, 0) + nulled
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
            chunks.append(pa.Array.from_buffers(f.type, len(chunk), [bitmap, pa.py_buffer(np.where(finite, values, 0.0))]))
            changed = True
        if changed:
            table = table.set_column(index, f, pa.chunked_array(chunks, f.type))
    return table


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
    """Write row groups (plus source_month) to dst, encoding each on a thread while the next is read.

    An OSError of the writer (disk full) is a StagingError: not the source file's fault.
    """
    start, end = month_bounds(month)
    schema = spec.arrow_schema()
    month_field = schema.field(SOURCE_MONTH_COLUMN)

    def writing(call: Callable, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except OSError as exc:
            raise StagingError(f"{result.dataset} {month}: cannot write {dst}: {exc}") from None

    def encode(table: pa.Table) -> None:  # on the encoder thread, beside the reader's
        table = null_non_finite(table, result.non_finite_nulled)
        table = table.append_column(month_field, month_column(start, table.num_rows))
        writer.write_table(table, row_group_size=table.num_rows)

    sink = writing(pa.OSFile, str(dst), "wb")  # ours, so it is closed even when the writer fails
    writer = writing(
        pq.ParquetWriter,
        sink, schema, memory_pool=pool, use_dictionary=dictionary_columns(schema), compression=PARQUET_COMPRESSION,
    )
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-encode") as encoder:
            pending: Future | None = None
            for table in _row_groups(batches, declared_schema(spec)):
                result.outside_month_rows += outside_month_rows(table.column(spec.pickup_column), start, end)
                result.rows += table.num_rows
                if pending is not None:
                    writing(pending.result)  # at most one row group in the encoder: memory stays flat
                pending = encoder.submit(encode, table)
                result.row_groups += 1
            if pending is not None:
                writing(pending.result)
        writing(writer.close)
    except BaseException:
        try:
            writer.close()
        except OSError:
            pass  # the first error is the one to report
        raise
    finally:
        sink.close()


def convert(
    spec: DatasetSpec,
    month: str,
    src: Path,
    dst: Path,
    set_aside: Callable[[str, str], None] | None = None,
) -> ConvertResult:
    """Convert src to dst (Parquet, zstd). dst is written in place: callers stage it.

    A CSV is read in the fast mode, or, given `set_aside(reason, record)`, in the careful
    mode, which hands it the rows it cannot read (see reader.py).
    Raises ConversionError (naming dataset, month and file) on anything unreadable;
    UnreadableRowError, a subclass, when the fast mode meets a row it cannot read.
    """
    month = normalize_month(month)
    label = f"{spec.name} {month}"
    started = time.monotonic()
    src, dst = Path(src), Path(dst)
    result = ConvertResult(dataset=spec.name, month=month)
    pool = memory_pool()
    dst.parent.mkdir(parents=True, exist_ok=True)
    is_parquet = src.name.lower().endswith(".parquet")
    try:
        if is_parquet:
            pf = pq.ParquetFile(src)
            names = pf.schema_arrow.names
        else:
            names = csv_header(src, label)
        mapping, result.extra_columns, result.filled_columns = resolve_columns(spec, names, label)
        result.renamed = {s: d for s, d in mapping.items() if s != d}
        if is_parquet:
            _write(spec, month, _parquet_batches(spec, pf, mapping, result.filled_columns, label), dst, result, pool)
        else:
            with csv_bytes(src) as source:
                where = f"{label} ({src})"
                if set_aside is None:
                    batches = fast_batches(spec, source, names, mapping, where, pool)
                else:
                    batches = careful_batches(spec, source, names, mapping, where, pool, set_aside)
                _write(spec, month, batches, dst, result, pool)
    except (ConversionError, StagingError):
        raise
    except READ_ERRORS as exc:
        if "straddling object" in str(exc):  # only the careful mode's 16 MiB blocks get here
            exc = f"a record longer than {2 * CAREFUL_BLOCK_SIZE >> 20} MiB (an unclosed quote?)"
        raise ConversionError(f"{label}: cannot convert {src}: {exc}") from None
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    """The command: never writes over its input, and publishes OUT only when it is complete.

    The Parquet file is built beside OUT under a hidden name and renamed onto OUT at the
    end, so a failure leaves no partial file under the name asked for (nor an older OUT touched).
    """
    parser = argparse.ArgumentParser(prog="python -m taxi_assets.convert", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--month", required=True, help="YYYY-MM")
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    args = parser.parse_args(argv)
    try:
        spec, month = get_spec(args.dataset), normalize_month(args.month)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.src.is_file():
        parser.error(f"{args.src}: no such file")
    if args.dst.exists() and (args.dst.is_dir() or os.path.samefile(args.dst, args.src)):
        parser.error(f"OUT ({args.dst}) must be a new file name, not the input or a folder")
    tmp = args.dst.with_name(f".{args.dst.name}.{os.getpid()}.tmp")
    try:
        result = convert(spec, month, args.src, tmp)
        os.replace(tmp, args.dst)
    except (ConversionError, StagingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        tmp.unlink(missing_ok=True)
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
