"""A month's source file (CSV.gz or Parquet) -> Parquet in the dataset's canonical schema.

This is the lake layer's code path and also a command, so anyone can time it:
    python -m taxi_assets.transform.convert --dataset yellow --month 2021-01 IN.csv.gz OUT.parquet

The file is streamed (memory stays flat whatever the month's size), with types
declared by the spec (never inferred) and column names normalised across years.
Why it is shaped this way (figures: docs/performance.md, `make bench`):
- the CSV reader is given the spec's names, order and types, so its batches are
  already the lake schema: no inference, no casts, absent optional columns come
  out as typed nulls;
- gzip is inflated by ISA-L on its own thread, beside Arrow's parser (zlib
  inflation is a large share of a conversion);
- the fast mode parses blocks of the CSV on two threads, which also make the
  canonical batches (Arrow's streaming reader parses on one thread);
- batches are gathered into row groups that a writer thread encodes while the
  next ones are parsed;
- few blocks are in flight and row groups are small, and freed memory goes back at
  once (jemalloc, decay 0);
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
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taxi_assets.errors import ConversionError, StagingError
from taxi_assets.spec import eras
from taxi_assets.spec.datasets import SOURCE_MONTH_COLUMN, DatasetSpec, get_spec
from taxi_assets.spec.months import month_bounds, normalize_month
from taxi_assets.transform import stitch
from taxi_assets.transform.reader import (
    CAREFUL_BLOCK_SIZE,
    READ_ERRORS,
    careful_batches,
    csv_bytes,
    csv_header,
    fast_batches,
    match_era,
    resolve_columns,
)

if TYPE_CHECKING:  # shapely and pyproj load only where zones are filled
    from taxi_assets.geo.fill import ZoneFill
    from taxi_assets.transform.quarantine import Quarantine

ROW_GROUP_ROWS = 64 << 10
PARQUET_BATCH_ROWS = 64 << 10
# Row groups encoded at once (stitch.py): the machines it runs on have two cores or more.
ENCODERS = 2
PARQUET_COMPRESSION = "zstd"  # at Arrow's default level (1): 3 is 3% smaller and 10% slower

EPOCH = dt.date(1970, 1, 1)


@dataclass
class ConvertResult:
    dataset: str
    month: str
    rows: int = 0
    # Records in the file, counted apart from the parser: data lines of a CSV (blank ones
    # not counted), the footer's row count of a Parquet file.
    rows_read: int = 0
    # What rows_read counts: "records", or "lines" where a CSV's quotes do not close (its
    # set-aside records are then counted by their lines too).
    rows_read_unit: str = "records"
    outside_month_rows: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    filled_columns: list[str] = field(default_factory=list)
    # NaN/infinity in a number column: stored as null, counted here per column.
    non_finite_nulled: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    row_groups: int = 0
    era: str | None = None
    # Text codes that became null: {column: {code: rows}} (eras.map_codes).
    unknown_codes: dict[str, dict[str, int]] = field(default_factory=dict)
    # Location IDs set from coordinates: mapped_/unlocated_pickups/dropoffs and shares (geo.fill).
    zones: dict[str, float] = field(default_factory=dict)

    def set_aside(self, quarantine: Quarantine) -> int:
        """What the set-aside rows count for in the accounting: records, or their lines where the
        file's records were counted by lines (a CSV whose quotes do not close)."""
        return quarantine.lines if self.rows_read_unit == "lines" else quarantine.rows

    def warnings(self, quarantine: Quarantine) -> list[str]:
        """What a user should know about the month's conversion, one line each."""
        label = f"{self.dataset} {self.month}"
        lines = []
        if quarantine.rows:
            lines.append(
                f"{label}: set aside {quarantine.rows:,} malformed of {quarantine.records:,} rows "
                f"({quarantine.share:.3%}) in the lake's quarantine; e.g. {' | '.join(quarantine.examples)}"
            )
        if self.unknown_codes:
            lines.append(f"{label}: unknown text codes stored as null: {self.unknown_codes}")
        if self.extra_columns:
            lines.append(f"{label}: dropped columns not in the spec: {', '.join(self.extra_columns)}")
        if self.non_finite_nulled:
            counts = ", ".join(f"{n:,} in {c}" for c, n in self.non_finite_nulled.items())
            lines.append(f"{label}: NaN/infinite values stored as null: {counts}")
        return lines

    def summary(self, quarantine: Quarantine) -> str:
        return (
            f"{self.dataset} {self.month}: {self.rows:,} rows in {self.seconds:.1f}s "
            f"({self.rows_read:,} read = {self.rows:,} published + {self.set_aside(quarantine):,} set aside)"
        )

    def metadata(self, quarantine: Quarantine) -> dict[str, Any]:
        """The month's materialization metadata: its figures, what was renamed, dropped, nulled."""
        return {
            "dagster/row_count": self.rows,
            # Checked for every month (quarantine.check_accounted): rows_read = row_count + set_aside_rows.
            "rows_read": self.rows_read,
            "set_aside_rows": self.set_aside(quarantine),
            "quarantined_rows": quarantine.rows,
            "quarantined_share": round(quarantine.share, 6),
            "outside_month_rows": self.outside_month_rows,
            "outside_month_share": round(self.outside_month_rows / max(self.rows, 1), 6),
            "renamed_columns": self.renamed,
            "dropped_columns": self.extra_columns,
            "filled_null_columns": self.filled_columns,
            "era": self.era or "undeclared",
            # Text codes no data dictionary knows: stored as null, counted here.
            "unknown_codes": self.unknown_codes,
            "unknown_code_rows": sum(sum(c.values()) for c in self.unknown_codes.values()),
            "non_finite_nulled": self.non_finite_nulled,
            **self.zones,
            "seconds": round(self.seconds, 3),
        }


def memory_pool() -> pa.MemoryPool:
    """jemalloc told to hand freed pages back at once.

    Arrow's default (mimalloc) keeps freed batches mapped, and memory then grows with the
    month instead of staying flat.
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow build without jemalloc
        return pa.default_memory_pool()
    pa.jemalloc_set_decay_ms(0)
    return pool


@contextmanager
def default_pool(pool: pa.MemoryPool) -> Iterator[None]:
    """`pool` as Arrow's default while a file converts: the Parquet reader (pyarrow's
    ParquetFile takes no pool) and the casts allocate from the default pool, which would
    otherwise keep freed memory mapped as in memory_pool."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def declared_schema(spec: DatasetSpec) -> pa.Schema:
    """The spec's columns as the readers deliver them (the lake schema before source_month)."""
    return pa.schema([pa.field(c.name, c.type) for c in spec.columns])


def _parquet_batches(
    spec: DatasetSpec,
    pf: pq.ParquetFile,
    mapping: dict[str, str],
    label: str,
    codes: eras.CodeCounts,
    set_aside: Callable[[str, str], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the declared columns: renamed, mapped and cast (official files differ by
    year, eras.canonical_batch), filled. Read a batch at a time, never the whole file."""
    schema = declared_schema(spec)
    # Decoded on this thread: the encoder threads keep both cores busy, and Arrow's decode
    # threads only add CPU (docs/performance.md).
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(mapping), use_threads=False):
        batch = batch.rename_columns([mapping[n] for n in batch.schema.names])
        yield eras.canonical_batch(spec, batch, schema, codes, label, set_aside)


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
                bits = np.unpackbits(
                    np.frombuffer(validity, dtype=np.uint8), count=chunk.offset + len(chunk), bitorder="little"
                )
                valid &= bits[chunk.offset :].astype(bool)
                nulled = int(np.count_nonzero(bits[chunk.offset :].astype(bool) & ~finite))
            else:
                nulled = int(np.count_nonzero(~finite))
            if nulled:
                counts[f.name] = counts.get(f.name, 0) + nulled
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
            chunks.append(
                pa.Array.from_buffers(f.type, len(chunk), [bitmap, pa.py_buffer(np.where(finite, values, 0.0))])
            )
            changed = True
        if changed:
            table = table.set_column(index, f, pa.chunked_array(chunks, f.type))
    return table


def _row_groups(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """Gather reader batches into tables of ROW_GROUP_ROWS rows (the last one: the rest),
    whatever the batches' sizes (slices: no copy)."""
    gathered: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        while batch.num_rows:
            take = min(batch.num_rows, ROW_GROUP_ROWS - rows)
            gathered.append(batch.slice(0, take))
            rows += take
            batch = batch.slice(take)
            if rows == ROW_GROUP_ROWS:
                yield pa.Table.from_batches(gathered, schema)
                gathered, rows = [], 0
    if gathered:
        yield pa.Table.from_batches(gathered, schema)


def _micros(day: dt.date) -> int:
    return (day - EPOCH).days * 86_400_000_000


def outside_month_rows(pickup: pa.ChunkedArray, start: dt.date, end: dt.date) -> int:
    """Rows whose pickup (timestamp[us]) is before start or on/after end; nulls do not count.

    Read straight from the Arrow buffers with numpy: pyarrow.compute, pa.scalar and
    to_numpy would import pandas (pyarrow's lazy shim), time and memory the conversion has
    no other use for.
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
    fill: Callable[[pa.Table], pa.Table] | None = None,
):
    """Write row groups (plus source_month) to dst, ENCODERS of them encoded at once on
    threads while the next is read, laid end to end in order in one file (stitch.py).
    `fill` (location IDs from coordinates, geo.fill) runs on those threads too, after NaN -> null,
    one row group at a time (it counts what it maps).

    An OSError of the writer (disk full) is a StagingError: not the source file's fault.
    """
    start, end = month_bounds(month)
    schema = spec.arrow_schema()
    month_field = schema.field(SOURCE_MONTH_COLUMN)
    options = dict(memory_pool=pool, use_dictionary=dictionary_columns(schema), compression=PARQUET_COMPRESSION)
    filling = threading.Lock()

    def writing(call: Callable, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except OSError as exc:
            raise StagingError(f"{result.dataset} {month}: cannot write {dst}: {exc}") from None

    def encode(table: pa.Table) -> tuple[stitch.EncodedRowGroup, dict[str, int]]:  # on an encoder thread
        nulled: dict[str, int] = {}
        table = null_non_finite(table, nulled)
        if fill is not None:
            with filling:
                table = fill(table)
        table = table.append_column(month_field, month_column(start, table.num_rows))
        return stitch.encode_row_group(table, schema, **options), nulled

    sink = writing(pa.OSFile, str(dst), "wb")
    try:
        out = stitch.StitchedWriter(lambda data: writing(sink.write, data))
        with ThreadPoolExecutor(max_workers=ENCODERS, thread_name_prefix="parquet-encode") as encoder:
            pending: deque[Future] = deque()

            def append_oldest() -> None:
                encoded, nulled = writing(pending.popleft().result)
                for name, count in nulled.items():
                    result.non_finite_nulled[name] = result.non_finite_nulled.get(name, 0) + count
                out.add(encoded)

            for table in _row_groups(batches, declared_schema(spec)):
                result.outside_month_rows += outside_month_rows(table.column(spec.pickup_column), start, end)
                result.rows += table.num_rows
                if len(pending) >= ENCODERS:
                    append_oldest()  # at most ENCODERS row groups in the encoders: memory stays flat
                pending.append(encoder.submit(encode, table))
                result.row_groups += 1
            while pending:
                append_oldest()
        out.close(lambda: stitch.empty_footer(schema, **options))
    finally:
        sink.close()


def check_schema(spec: DatasetSpec, month: str, src: Path) -> None:
    """SchemaError when the lake step would refuse src's columns, read from the CSV header or
    the Parquet footer alone (cheap enough for the raw step: see TaxiSource.download_first)."""
    month = normalize_month(month)
    label = f"{spec.name} {month}"
    src = Path(src)
    is_parquet = src.name.lower().endswith(".parquet")
    try:
        names = pq.read_schema(src).names if is_parquet else csv_header(src, label)
    except (*READ_ERRORS, ConversionError):
        return  # not a question of columns (empty, broken): the lake step says what is wrong
    era = match_era(spec, names, spec.eras_of(month, "parquet" if is_parquet else "csv"))
    resolve_columns(spec, names, label, era)


def _reporting(batches: Iterable[pa.RecordBatch], kept: Callable[[int], None] | None) -> Iterable[pa.RecordBatch]:
    """The batches, each one's row count handed to `kept` first (when given)."""
    for batch in batches:
        if kept is not None:
            kept(batch.num_rows)
        yield batch


def convert(
    spec: DatasetSpec,
    month: str,
    src: Path,
    dst: Path,
    set_aside: Callable[[str, str], None] | None = None,
    zones: ZoneFill | None = None,
    kept: Callable[[int], None] | None = None,
) -> ConvertResult:
    """Convert src to dst (Parquet, zstd). dst is written in place: callers stage it.

    A CSV is read in the fast mode, or, given `set_aside(reason, record)`, in the careful
    mode, which hands it the rows it cannot read (see reader.py). A Parquet value that does
    not fit its declared type (a float that is not a whole number where an integer belongs,
    text that is not a decimal integer) goes to `set_aside` with its row (when given; else
    ConversionError). With `set_aside`, `kept(rows)` is called as each batch is read, once
    its unreadable rows went to `set_aside` (quarantine.py stops a mostly malformed file there).
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
    codes = eras.CodeCounts()
    with default_pool(pool):
        try:
            if is_parquet:
                # Unbuffered column chunks read page by page: a row group is never held whole.
                pf = pq.ParquetFile(
                    src, memory_map=False, buffer_size=1 << 20, pre_buffer=False, coerce_int96_timestamp_unit="us"
                )
                names = pf.schema_arrow.names
            else:
                names = csv_header(src, label)
            era = match_era(spec, names, spec.eras_of(month, "parquet" if is_parquet else "csv"))
            result.era = era.months if era else None
            mapping, result.extra_columns, result.filled_columns = resolve_columns(spec, names, label, era)
            result.extra_columns = [n for n in result.extra_columns if not n.startswith("__unnamed_")]
            result.renamed = {s: d for s, d in mapping.items() if s != d}
            # With `zones`, rows with coordinates and no location IDs get them (geo.fill), when
            # the file has coordinate columns; result.zones counts what was mapped.
            fill = zones.for_file(set(mapping.values())) if zones is not None else None
            hook = fill if fill is not None and fill.columns else None
            if is_parquet:
                result.rows_read = pf.metadata.num_rows
                batches = _parquet_batches(spec, pf, mapping, label, codes, set_aside)
                batches = _reporting(batches, kept)
                _write(spec, month, batches, dst, result, pool, hook)
            else:
                with csv_bytes(src) as source:
                    where = f"{label} ({src})"
                    schema = declared_schema(spec)

                    def canonical(batch: pa.RecordBatch) -> pa.RecordBatch:
                        return eras.canonical_batch(spec, batch, schema, codes, where)

                    if set_aside is None:  # canonical batches made on the parser threads
                        batches = fast_batches(spec, source, names, mapping, where, pool, era, canonical)
                    else:
                        read = careful_batches(spec, source, names, mapping, where, pool, set_aside, era)
                        batches = _reporting((canonical(b) for b in read), kept)
                    _write(spec, month, batches, dst, result, pool, hook)
                    result.rows_read = source.records
                    result.rows_read_unit = "records" if source.quotes_closed else "lines"
            result.unknown_codes = codes.as_dict()
            result.zones = hook.metadata() if hook is not None else {}
        except (ConversionError, StagingError):
            raise
        except UnicodeDecodeError as exc:  # pyarrow decodes a Parquet footer's names and metadata as UTF-8
            raise ConversionError(
                f"{label}: cannot convert {src}: its metadata is not UTF-8 text (damaged?): {exc}"
            ) from None
        except READ_ERRORS as exc:
            if "straddling object" in str(exc):  # only the careful mode's large blocks get here
                exc = f"a record longer than {2 * CAREFUL_BLOCK_SIZE >> 20} MiB (an unclosed quote?)"
            raise ConversionError(f"{label}: cannot convert {src}: {exc}") from None
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    """The command: never writes over its input, and publishes OUT only when it is complete.

    The Parquet file is built beside OUT under a hidden name and renamed onto OUT at the
    end, so a failure leaves no partial file under the name asked for (nor an older OUT touched).
    """
    parser = argparse.ArgumentParser(
        prog="python -m taxi_assets.transform.convert", description=__doc__.splitlines()[0]
    )
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
    code = main()
    # Everything is written and closed here. Leaving through os._exit skips the C++ static
    # destructors, where Arrow's thread pools can race a worker still winding down and abort
    # a finished process ("terminate called without an active exception", exit -6: seen
    # twice under load in the failed-command test; apache/arrow#34314, #39862).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
