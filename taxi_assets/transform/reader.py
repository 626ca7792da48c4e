"""The one CSV reader of a month's file: a fast mode and a careful mode over the same bytes,
header and column mapping, so the two can never disagree about a file.

- fast: Arrow's CSV reader with the declared types, on blocks of the file parsed on two
  threads; batches are the lake schema as they come. It stops (UnreadableRowError) at
  anything it cannot read exactly as the careful mode would: a record of the wrong width,
  a value not of its type, bytes that are not UTF-8, a record longer than two parse
  blocks, a block cut inside a quoted value, an integer in another notation
  (Arrow reads 0x1F as 31, so the bytes are scanned for 0x), an over-long text.
- careful: every column read as bytes, each value checked with the same rules; rows
  that fail are handed to `set_aside(reason, record)`, the others cast to the declared
  types. It is only run on a file the fast mode refused (quarantine.py).

Rules both modes apply (docs/failure-behaviour.md):
- a time with a zone offset (Z, +01:00) is not readable: TLC times are New York
  wall-clock times, and shifting them by an offset would move every trip;
- integers are decimal digits only (no 0x1F, no 1e3, no +5);
- a text value is at most MAX_TEXT_CHARS characters and valid UTF-8.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from isal import igzip, igzip_threaded
from isal.isal_zlib import error as IsalError

from taxi_assets.errors import ConversionError, SchemaError, UnreadableRowError
from taxi_assets.spec import eras
from taxi_assets.spec.datasets import DatasetSpec

# The fast mode parses blocks of this size on PARSE_THREADS threads, holding at most
# BLOCKS_IN_FLIGHT of them: bounded memory, two cores kept busy.
PARSE_BLOCK_SIZE = 1 << 20
PARSE_THREADS = 2
BLOCKS_IN_FLIGHT = 4
UNQUOTED = pacsv.ParseOptions(quote_char=False)
CAREFUL_BLOCK_SIZE = 16 << 20  # a record up to twice this is read (and set aside) in careful mode
CAREFUL_PART_ROWS = 16 << 10  # rows of a block checked and handed on at a time
INFLATE_BLOCK_SIZE = 256 << 10
MAX_TEXT_CHARS = 1000  # TLC's text values are flags and base numbers: a longer one is not a value

# What a broken file raises while it is read: Arrow, the OS, ISA-L's inflater.
READ_ERRORS = (pa.ArrowException, OSError, EOFError, IsalError)

DECIMAL_INT = eras.DECIMAL_INT
ZONED_TIME = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)\s*$", re.I)


def _key(name: str) -> str:
    return name.strip().lower()


def column_lookup(spec: DatasetSpec) -> dict[str, str]:
    """Source name (trimmed, lower case) -> canonical column: names and aliases."""
    lookup: dict[str, str] = {}
    for column in spec.columns:
        for name in (column.name, *column.aliases):
            lookup.setdefault(_key(name), column.name)
    return lookup


def era_columns(spec: DatasetSpec, era: eras.Era) -> list[str]:
    """The canonical columns an era's files carry."""
    lookup = column_lookup(spec)
    return [lookup[_key(name)] for name in era.header if _key(name) in lookup]


def match_era(spec: DatasetSpec, source_names: list[str], candidates: list[eras.Era]) -> eras.Era | None:
    """Of the shapes a month was published in, the one this file has: the one whose required
    columns it all has, sharing most columns with it (the first declared on a tie); when
    none fits, the closest, so that the refusal names what is missing against it."""
    if not candidates:
        return None
    lookup = column_lookup(spec)
    present = {lookup[_key(n)] for n in source_names if _key(n) in lookup}

    def distance(era: eras.Era) -> tuple[int, int]:
        columns = set(era_columns(spec, era))
        missing = {c for c in columns if spec.column(c).required} - present
        return len(missing), len(columns ^ present)

    return min(candidates, key=distance)


def resolve_columns(spec: DatasetSpec, source_names: list[str], label: str, era: eras.Era | None = None):
    """Map source column names onto the spec. Returns (source -> canonical, extra source
    columns, optional columns to fill).

    A spec column is matched by, in this order of precedence: its exact name, an exact
    alias, then any of those ignoring case and surrounding blanks. When two source columns
    match one spec column, the better match wins and the other is dropped (reported as
    extra); two equally good matches are an ambiguity nothing resolves: SchemaError
    naming both. Extra columns are reported and dropped: the lake holds the declared schema only.
    The month's era (when known) says which columns its files must have; otherwise
    the columns every era has.
    """
    lookup = column_lookup(spec)
    candidates: dict[str, list[tuple[int, int, str]]] = {}
    for index, name in enumerate(source_names):
        canonical = lookup.get(_key(name))
        if canonical is None:
            continue
        column = spec.column(canonical)
        rank = 0 if name == column.name else 1 if name in column.aliases else 2
        candidates.setdefault(canonical, []).append((rank, index, name))
    mapping: dict[str, str] = {}
    for canonical, found in candidates.items():
        found.sort()
        if len(found) > 1 and found[0][0] == found[1][0]:
            (_, i, a), (_, j, b) = found[:2]
            raise SchemaError(
                f"{label}: columns {a!r} (#{i + 1}) and {b!r} (#{j + 1}) both read as {canonical}; "
                f"nothing says which one holds it: rename or drop one"
            )
        mapping[found[0][2]] = canonical
    extra = [name for name in source_names if name not in mapping]
    present = set(mapping.values())
    if era:
        required = {c for c in era_columns(spec, era) if spec.column(c).required}
    else:  # a month no era covers: what every era has
        required = {c.name for c in spec.columns if c.required and not c.coordinate}
    missing = [c.name for c in spec.columns if c.name in required and c.name not in present]
    if missing:
        raise SchemaError(
            f"{label}: required column(s) {', '.join(missing)} missing (file has {', '.join(source_names)})"
        )
    fill = [c.name for c in spec.columns if c.name not in present]
    return mapping, extra, fill


def csv_read_types(spec: DatasetSpec, era: eras.Era | None) -> dict[str, pa.DataType]:
    """Canonical column -> the type the CSV reader parses it as: declared, except text codes
    (read as strings, mapped by eras.canonical_batch)."""
    text = set(era.text_codes) if era else set()
    return {c.name: pa.string() if c.name in text else c.type for c in spec.columns}


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def csv_header(path: Path, label: str) -> list[str]:
    """The header's names, padded with unnamed columns when the first record has more fields
    (older files end every row with empty fields the header does not name)."""
    opener = igzip.open if is_gzip(path) else open
    try:
        # Bytes up to the first line break, then decoded: a bad byte further on is a row's problem.
        with opener(path, "rb") as f:
            line = f.readline(1 << 20).split(b"\r")[0].decode("utf-8-sig")
            # Blank lines after the header (2009-2014, green 2016H2), ending in LF or CRLF:
            # the first record is the first line with something on it.
            first = f.readline(1 << 20)
            while first and not first.strip():
                first = f.readline(1 << 20)
            first = first.split(b"\r")[0]
    except (*READ_ERRORS, UnicodeDecodeError) as exc:
        raise ConversionError(f"{label}: cannot read header of {path}: {exc}") from None
    if not line.strip():
        raise ConversionError(f"{label}: {path} is empty (no header)")
    # The header is one CSV record; the csv module handles its quoting. The first record
    # only gives its width (a byte that is not UTF-8 there is its row's problem).
    names = next(csv.reader([line]))
    record = first.decode("utf-8", "replace")
    width = len(next(csv.reader([record]), [])) if record.strip() else len(names)
    return names + [f"{UNNAMED}{i}" for i in range(len(names), width)]


def csv_text_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank lines, for messages: the csv module, not the readers."""
    opener = igzip.open if is_gzip(path) else open
    with opener(path, "rb") as f:
        for number, line in enumerate(f, 1):
            text = line.decode("utf-8", "backslashreplace").rstrip("\r\n")
            if text.strip():
                yield number, next(csv.reader([text]))


class _Scanned:
    """A binary file Arrow reads through, noting whether '0x' occurs.

    An x is rare in TLC data (the header's 'extra' and 'mta_tax' aside), so a block is
    first searched for x by memchr (~1% of the read time); searching for '0x' itself
    stops at every 0 and costs a quarter of a conversion.
    """

    def __init__(self, raw):
        self.raw, self.tail, self.hex_seen = raw, b"", False
        # Lines counted from the bytes, apart from the parser, so that rows it drops
        # without a word show (quarantine.py checks the row accounting).
        self.line_ends, self.blank_lines, self.last = 0, 0, b""
        self.quoted_breaks, self.in_quotes = 0, False

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if not self.hex_seen and data and (b"x" in data or b"X" in data):
            window = self.tail + data[:1]
            self.hex_seen = b"0x" in data or b"0X" in data or window in (b"0x", b"0X")
        if data:
            self.line_ends += data.count(b"\n")
            if b'"' in data or self.in_quotes:  # a quoted line break is not a record's end
                self.quoted_breaks += self._quoted_line_breaks(data)
            edge = self.last + data[:2]  # a blank line across the previous read's end
            if b"\n\n" in data or b"\n\r\n" in data or b"\n\n" in edge or b"\n\r\n" in edge:
                self.blank_lines += _blank_lines(self.last + data, len(self.last))  # rare: counted only then
            self.last = (self.last + data)[-2:] if len(data) < 2 else data[-2:]
        self.tail = data[-1:]
        return data

    def _quoted_line_breaks(self, data: bytes) -> int:
        """Line breaks of `data` inside a quoted value ("" inside one counts twice: no change)."""
        a = np.frombuffer(data, dtype=np.uint8)
        quotes = np.flatnonzero(a == 34)
        breaks = np.flatnonzero(a == 10)
        inside = (np.searchsorted(quotes, breaks) + self.in_quotes) % 2 == 1
        self.in_quotes = bool((len(quotes) + self.in_quotes) % 2)
        return int(inside.sum())

    @property
    def data_lines(self) -> int:
        """Lines after the header that are not blank, as read so far (all of them at the end)."""
        if not self.last:
            return 0
        lines = self.line_ends + (0 if self.last.endswith(b"\n") else 1)
        return max(lines - 1 - self.blank_lines, 0)

    @property
    def quotes_closed(self) -> bool:
        return not self.in_quotes

    @property
    def records(self) -> int:
        """Records after the header: data lines, less the line breaks inside quoted values when
        every quote is closed (else the lines: an unclosed quote's record is set aside as its lines)."""
        return self.data_lines - self.quoted_breaks if self.quotes_closed else self.data_lines

    def __getattr__(self, name):
        return getattr(self.raw, name)


def _blank_lines(window: bytes, seen: int) -> int:
    """Empty lines (LF or CRLF) whose line end lies past the first `seen` bytes of window."""
    a = np.frombuffer(window, dtype=np.uint8)
    nl, cr = a == 10, a == 13
    ends = np.flatnonzero(nl[:-1] & nl[1:]) + 1
    crlf = np.flatnonzero(nl[:-2] & cr[1:-1] & nl[2:]) + 2
    return int((ends >= seen).sum() + (crlf >= seen).sum())


@contextmanager
def csv_bytes(path: Path):
    """What Arrow's CSV reader reads: the file (gzip inflated by ISA-L on a thread), scanned for 0x."""
    if is_gzip(path):
        with igzip_threaded.open(path, "rb", threads=1, block_size=INFLATE_BLOCK_SIZE) as stream:
            yield _Scanned(stream)
    else:
        with open(path, "rb", buffering=0) as stream:
            yield _Scanned(stream)


UNNAMED = "__unnamed_"  # fields past the header's last name (csv_header)


def _names(header: list[str], mapping: dict[str, str]) -> list[str]:
    # The file's columns under our names, so the reader emits the lake schema as is;
    # extra columns get names no spec column has.
    return [mapping.get(name, name if name.startswith(UNNAMED) else f"__extra_{i}") for i, name in enumerate(header)]


def _unnamed(names: list[str]) -> list[str]:
    return [n for n in names if n.startswith(UNNAMED)]


def _null_options(**options) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True, **options)


def _blocks(source: _Scanned, label: str) -> Iterator[memoryview]:
    """The stream cut after a line break into blocks of about PARSE_BLOCK_SIZE bytes, so that
    each block parses alone (when its quotes are balanced: see fast_batches)."""
    rest = b""
    while data := source.read(PARSE_BLOCK_SIZE):
        data = rest + data if rest else data
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line end yet: a long record (the careful mode reads it, up to its limit)
            if len(data) >= 2 * PARSE_BLOCK_SIZE:
                raise UnreadableRowError(f"{label}: a record longer than {2 * PARSE_BLOCK_SIZE >> 10} KiB")
            rest = data
            continue
        rest = data[cut:]
        yield memoryview(data)[:cut]  # no copy
    if rest:
        yield memoryview(rest)


def fast_batches(
    spec: DatasetSpec,
    source: _Scanned,
    header: list[str],
    mapping: dict[str, str],
    label: str,
    pool: pa.MemoryPool,
    era: eras.Era | None = None,
    finish: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the spec's columns, typed (csv_read_types: text codes as text, for
    eras.canonical_batch) and named by the reader itself, in the file's order; UnreadableRowError
    at the first thing the careful mode would set aside.

    Blocks of the file are parsed on PARSE_THREADS threads (Arrow's streaming reader parses
    on one), `finish(batch)` (the canonical batch) applied there too; at most BLOCKS_IN_FLIGHT
    blocks are held, so memory stays flat.
    """
    types = csv_read_types(spec, era)
    integers = [n for n, t in types.items() if pa.types.is_integer(t) and n in mapping.values()]
    texts = [n for n, t in types.items() if pa.types.is_string(t) and n in mapping.values()]
    names = _names(header, mapping)
    # Fields past the header's last name are read too: empty in every row (as TLC's trailing
    # fields are), or the file goes to the careful mode, which sets such rows aside.
    unnamed = _unnamed(names)
    convert_options = _null_options(
        column_types={**types, **{n: pa.string() for n in unnamed}},
        include_columns=[c.name for c in spec.columns] + unnamed,
        include_missing_columns=True,
    )

    def parse(block: memoryview, first: bool) -> list[pa.RecordBatch]:
        # A quoted value may hold a line break, and a block may be cut inside it: an odd count
        # of quotes says so ("" inside a quoted value counts twice). Such a file goes to the
        # careful mode, which reads the stream whole, rather than give wrong rows.
        data, size = block.obj, len(block)  # bytes.find and count, on the block's range
        quoted = data.find(b'"', 0, size) >= 0
        if quoted and data.count(b'"', 0, size) % 2:
            raise UnreadableRowError(f"{label}: a quoted value spans lines (or a quote is not closed)")
        try:
            table = pacsv.read_csv(
                pa.py_buffer(block),
                memory_pool=pool,
                # Without quotes in the block, the same rows without the tokenizer's quote
                # handling, which costs parse CPU.
                parse_options=pacsv.ParseOptions() if quoted else UNQUOTED,
                read_options=pacsv.ReadOptions(
                    column_names=names,
                    skip_rows=1 if first else 0,
                    block_size=len(block) + 1,  # one batch
                    use_threads=False,
                ),
                convert_options=convert_options,
            )
        except pa.ArrowInvalid as exc:
            raise UnreadableRowError(f"{label}: {exc}") from None
        for name in unnamed:
            if table.column(name).null_count != table.num_rows:
                raise UnreadableRowError(f"{label}: a value past the header's last column")
        if unnamed:
            table = table.drop_columns(unnamed)
        batches = table.to_batches()
        for batch in batches:
            for name in texts:
                if _longest(batch.column(name)) > MAX_TEXT_CHARS:
                    raise UnreadableRowError(f"{label}: {name}: a value longer than {MAX_TEXT_CHARS} characters")
        return [finish(b) for b in batches] if finish is not None else batches

    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="csv-parse") as parsers:
        try:
            for index, block in enumerate(_blocks(source, label)):
                pending.append(parsers.submit(parse, block, index == 0))
                del block
                if len(pending) >= BLOCKS_IN_FLIGHT:
                    yield from _checked(pending.popleft().result(), source, integers, label)
            while pending:
                yield from _checked(pending.popleft().result(), source, integers, label)
        finally:
            for future in pending:
                future.cancel()


def _checked(batches: list[pa.RecordBatch], source: _Scanned, integers: list[str], label: str):
    if source.hex_seen and integers:
        raise UnreadableRowError(f"{label}: '0x' in the file: an integer in hexadecimal?")
    yield from batches


def _longest(array: pa.Array) -> int:
    """Longest value of a string array in bytes (>= characters), from its offsets."""
    if len(array) == 0:
        return 0
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=array.offset + len(array) + 1)
    return int(np.diff(offsets[array.offset :]).max())


def careful_batches(
    spec: DatasetSpec,
    source: _Scanned,
    header: list[str],
    mapping: dict[str, str],
    label: str,
    pool: pa.MemoryPool,
    set_aside: Callable[[str, str], None],
    era: eras.Era | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the declared columns from the rows every value of which is readable; the
    others go to set_aside(reason, record as in the file). Raises ConversionError only for
    what is not a row (a broken stream, a record longer than twice CAREFUL_BLOCK_SIZE)."""
    import pyarrow.compute as pc  # only here: it makes pyarrow import pandas

    names = _names(header, mapping)
    types = csv_read_types(spec, era)
    schema = pa.schema([pa.field(c.name, types[c.name]) for c in spec.columns])
    wrong_width: list[pacsv.InvalidRow] = []

    def note_wrong_width(row: pacsv.InvalidRow) -> str:
        wrong_width.append(row)
        return "skip"

    reader = pacsv.open_csv(
        source,
        memory_pool=pool,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=CAREFUL_BLOCK_SIZE),
        parse_options=pacsv.ParseOptions(invalid_row_handler=note_wrong_width),
        convert_options=_null_options(column_types={n: pa.binary() for n in names}),
    )

    def flush_wrong_width() -> None:
        for row in wrong_width:
            set_aside(f"expected {row.expected_columns} fields, got {row.actual_columns}", row.text)
        wrong_width.clear()

    def parts() -> Iterator[pa.RecordBatch]:
        # Each block's rows are typed and handed on CAREFUL_PART_ROWS at a time, so that the
        # share set aside is known as the file is read (quarantine.py stops a file that is
        # mostly malformed early) and not only after a whole block.
        for block in reader:
            flush_wrong_width()
            for start in range(0, max(block.num_rows, 1), CAREFUL_PART_ROWS):
                yield block.slice(start, CAREFUL_PART_ROWS)

    with reader:  # closed (read-ahead stopped) before the stream under it, as in fast_batches
        for batch in parts():
            typed, errors = {}, {}
            for name in _unnamed(names):
                values = batch.column(name)
                for i in _positions(pc, pc.is_valid(values)) if values.null_count != len(values) else []:
                    value = values[i].as_py().decode("utf-8", "replace")
                    errors.setdefault(i, []).append(f"a value past the header's last column: {value!r}")
            for column in spec.columns:
                if column.name in batch.schema.names:
                    typed[column.name] = _read_column(
                        pc, batch.column(column.name), column.name, types[column.name], errors
                    )
            if errors:
                for i in sorted(errors):
                    set_aside("; ".join(errors[i]), _record(batch, i))
                keep = pa.array([i not in errors for i in range(batch.num_rows)])
                typed = {name: values.filter(keep) for name, values in typed.items()}
            rows = batch.num_rows - len(errors)
            yield pa.RecordBatch.from_arrays(
                [typed[c.name] if c.name in typed else pa.nulls(rows, types[c.name]) for c in spec.columns],
                schema=schema,
            )
        flush_wrong_width()  # rows of blocks that yielded no batch (every row the wrong width)


def _read_column(pc, raw: pa.Array, name: str, type_: pa.DataType, errors: dict[int, list[str]]) -> pa.Array:
    """raw (binary) as type_, with every unreadable value's reason added to errors[row]
    and a null in its place."""
    bad: dict[int, str] = {}
    for i in _failing(lambda a: a.cast(pa.string()), raw):
        bad[i] = f"{name}: {raw[i].as_py()!r} is not UTF-8 text"
    text = pc.if_else(_mask(len(raw), bad), pa.nulls(len(raw), pa.binary()), raw).cast(pa.string())
    if pa.types.is_string(type_):
        long = pc.greater(pc.utf8_length(text), MAX_TEXT_CHARS)
        for i in _positions(pc, long):
            bad[i] = f"{name}: a value of {len(text[i].as_py()):,} characters (at most {MAX_TEXT_CHARS} are read)"
    else:
        if pa.types.is_integer(type_) or pa.types.is_floating(type_):
            text = pc.utf8_trim_whitespace(text)  # the CSV reader trims blanks around numbers
        text = pc.if_else(_mask(len(text), bad), pa.nulls(len(text), pa.string()), text)
        for i in _failing(lambda a: a.cast(type_), text):
            value = text[i].as_py()
            if pa.types.is_timestamp(type_) and ZONED_TIME.search(value):
                bad[i] = f"{name}: {value!r} carries a time zone; TLC times are New York wall-clock times without one"
            else:
                bad[i] = f"{name}: {value!r} is not {type_}"
        if pa.types.is_integer(type_):  # Arrow also reads 0x1F: only decimal digits are meant
            for i in _positions(pc, pc.invert(pc.match_substring_regex(text, DECIMAL_INT))):
                bad.setdefault(i, f"{name}: {text[i].as_py()!r} is not a decimal integer")
    for i, reason in bad.items():
        errors.setdefault(i, []).append(reason)
    text = pc.if_else(_mask(len(text), bad), pa.nulls(len(text), text.type), text)
    return text.cast(type_)


def _mask(n: int, rows: dict[int, str]) -> pa.Array:
    mask = np.zeros(n, dtype=bool)
    mask[list(rows)] = True
    return pa.array(mask)


def _positions(pc, flags: pa.Array) -> list[int]:
    return pc.indices_nonzero(pc.fill_null(flags, False)).to_pylist()


def _failing(cast: Callable[[pa.Array], pa.Array], values: pa.Array, offset: int = 0) -> list[int]:
    """Positions of the values `cast` refuses, by bisection: Arrow's own parsing rules,
    and cheap when (as here) few values are bad."""
    try:
        cast(values)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(values) == 1:
            return [offset]
    half = len(values) // 2
    return _failing(cast, values[:half], offset) + _failing(cast, values[half:], offset + half)


def _record(batch: pa.RecordBatch, i: int) -> str:
    """Row i as a CSV line of its original text (nulls were empty fields; bytes that are
    not UTF-8 are written as \\x escapes)."""
    values = [b"" if v is None else v for v in batch.slice(i, 1).to_pylist()[0].values()]
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(v.decode("utf-8", "backslashreplace") for v in values)
    return line.getvalue()
