"""Eras: how a feed was published in a span of months, and the moves that map it onto the feed's one table.

An `Era` is data (declared per feed in the spec table, datasets.py): its months, its
format, its columns as published (spelling, order), which canonical columns it carries
as text codes, and the quirks its files have (a blank line after the CSV header, empty
trailing fields, Parquet columns typed null or double, timestamps as text or ns, a
pandas index column). The conversion reads any of them with the same code:

- column names are matched by the spec's aliases, case-insensitively, after trimming;
- `canonical_batch` turns a batch of source columns into the declared types: text codes
  are mapped to the current data dictionary's numbers (`CODE_MAPS`; a code nobody knows
  becomes null and is counted, never guessed), `1`/`0` flags become `Y`/`N`, a `0`
  coordinate becomes null, and every other column is cast safely (a float that is not a
  whole number never becomes an integer: its row is set aside with the reason).

The mirror generator writes each era's shape from the same declarations, and
docs/data.md tabulates them (taxi_tools/data_docs.py writes it).
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

# Text codes of older files -> the current data dictionary (docs/data.md "Codes"); keys are
# matched after trimming and upper-casing. None: a known code with no current number
# (stored as null and counted, like an unknown one, so nothing is invented).
VENDOR_CODES: dict[str, int | None] = {"CMT": 1, "VTS": 2, "DDS": None}
# Only spellings seen in real files (docs/data.md); 6 (voided) has no text code on record.
PAYMENT_CODES: dict[str, int | None] = {
    "CRE": 1, "CRD": 1, "CREDIT": 1,
    "CAS": 2, "CSH": 2, "CASH": 2,
    "NOC": 3, "NO CHARGE": 3,
    "DIS": 4, "DISPUTE": 4,
    "UNK": 5, "NA": 5,
}  # fmt: skip
# Y and N first: a batch of only those is already canonical (see map_codes).
FLAG_CODES: dict[str, str | None] = {"Y": "Y", "N": "N", "1": "Y", "0": "N"}
CODE_MAPS: dict[str, dict] = {"vendor": VENDOR_CODES, "payment": PAYMENT_CODES, "flag": FLAG_CODES}

# A row set aside: set_aside(reason, record as text). The caller decides where it goes.
SetAside = Callable[[str, str], None]

TLC_TIME_ZONE = "America/New_York"
# Integers are decimal digits only (reader.py's rule for CSV too): a cast reads 0x1F as 31.
DECIMAL_INT = r"^\s*-?[0-9]+\s*$"


@dataclass(frozen=True)
class Era:
    """One way a feed was published, for the months first..last (inclusive; None: to date)."""

    first: str
    last: str | None
    format: str  # "csv" or "parquet"
    # Column names as published, in order, spelled exactly (leading spaces included).
    header: tuple[str, ...]
    # Canonical columns published as text codes (VTS, CASH, ...) rather than numbers.
    text_codes: tuple[str, ...] = ()
    # CSV quirks, as bytes: how rows end, how the header ends (None: as the rows), what
    # comes between the header and the first row (blank lines), empty fields after each
    # row's last named one, every field quoted.
    line_end: str = "\n"
    header_end: str | None = None
    after_header: str = ""
    trailing_empty_fields: int = 0
    quoted: bool = False
    flags: str = "YN"  # how Y/N flags are spelled: "YN" or "10"
    # Parquet quirks: canonical column -> published type where it differs from the declared
    # one ("null" = the column has no type), the timestamps' type, a stray pandas index.
    parquet_types: tuple[tuple[str, str], ...] = ()
    timestamps: str = "us"  # "us", "ns" or "string"
    index_column: bool = False
    note: str = ""

    @property
    def blank_line_after_header(self) -> bool:
        return bool(self.after_header)

    def covers(self, month: str) -> bool:
        return self.first <= month and (self.last is None or month <= self.last)

    @property
    def months(self) -> str:
        return f"{self.first} .. {self.last or 'now'}"


@dataclass
class CodeCounts:
    """Text codes that became null, per canonical column: {column: {code: rows}}."""

    unknown: dict[str, Counter] = field(default_factory=dict)

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, column: str, codes: pa.Array) -> None:
        if len(codes):
            found = codes.value_counts().to_pylist()
            with self.lock:  # the fast CSV mode makes canonical batches on two threads
                counter = self.unknown.setdefault(column, Counter())
                for value in found:
                    counter[value["values"]] += value["counts"]

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {column: dict(counter) for column, counter in self.unknown.items()}

    @property
    def rows(self) -> int:
        return sum(sum(c.values()) for c in self.unknown.values())


def map_codes(values: pa.Array, codes: dict, type_: pa.DataType, column: str, counts: CodeCounts) -> pa.Array:
    """Text codes -> type_ by `codes`; numbers already in the current code stay as they are.

    Matching is after trimming and upper-casing. Empty text is null. A value that is neither
    a number nor a known code becomes null and is counted in `counts`.
    (No Python scalars or lists reach pyarrow here: they would make it import pandas.)
    """
    if codes is FLAG_CODES and _all_y_or_n(values):
        # The common case, checked without importing pyarrow.compute (heavy) into the lake step.
        return values if values.type == pa.string() else values.cast(pa.string())
    # A column of codes holds a handful of distinct values: map those, then take per row
    # (a month's column is mapped at the cost of a hash pass, not of ten passes of text work).
    encoded = values.dictionary_encode()
    distinct, indices = encoded.dictionary, encoded.indices
    out, unresolved, text = _map_distinct(distinct, codes, type_)
    if unresolved.true_count:
        rows = unresolved.take(indices)
        # filter drops the rows whose mask is null: no fill_null(False), whose Python
        # scalar makes pyarrow import pandas into the lake step's process.
        counts.add(column, text.take(indices).filter(rows))
    return out.take(indices)


def _map_distinct(values: pa.Array, codes: dict, type_: pa.DataType) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(values mapped to type_, which of them no code resolves, their normalised text)."""
    import pyarrow.compute as pc

    n = len(values)
    known, mapped = _code_arrays(tuple(codes.items()), type_)
    nulls = pa.nulls(n, pa.string())
    text = pc.utf8_upper(pc.utf8_trim_whitespace(values.cast(pa.string())))
    text = pc.if_else(pc.match_substring_regex(text, "^$"), nulls, text)
    index = pc.index_in(text, value_set=known)
    out = mapped.take(index)
    if pa.types.is_integer(type_):
        # Numeric spellings ("1", "2.0") are the current codes already.
        numeric = pc.match_substring_regex(text, r"^[0-9]+(\.0*)?$")
        as_number = pc.if_else(numeric, text, nulls)
        as_number = pc.replace_substring_regex(as_number, pattern=r"\.0*$", replacement="").cast(type_)
        out = pc.if_else(pc.is_valid(out), out, as_number)
        unresolved = pc.and_(pc.is_valid(text), pc.invert(pc.or_(pc.is_valid(index), numeric)))
    else:
        unresolved = pc.and_(pc.is_valid(text), pc.is_null(index))
    # Known codes without a current number (DDS) are counted too: null, but not silently.
    unresolved = pc.or_(unresolved, pc.and_(pc.is_valid(index), pc.is_null(out)))
    return out, unresolved, text


def _all_y_or_n(values: pa.Array) -> bool:
    """Every non-null value is exactly "Y" or "N" (read from the (large) string array's buffers)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    n = len(values)
    if values.null_count == n:
        return True
    validity, offsets, data = values.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    ends = np.frombuffer(offsets, dtype=width, count=values.offset + n + 1)[values.offset :]
    if values.null_count:
        bits = np.frombuffer(validity, dtype=np.uint8)
        valid = np.unpackbits(bits, count=values.offset + n, bitorder="little")[values.offset :].astype(bool)
    else:
        valid = np.ones(n, dtype=bool)
    if not np.all(np.diff(ends)[valid] == 1):
        return False
    firsts = np.frombuffer(data, dtype=np.uint8)[ends[:-1][valid]]
    return bool(np.all((firsts == ord("Y")) | (firsts == ord("N"))))


@functools.cache
def _code_arrays(items: tuple, type_: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """(codes as a string array, their values as type_), built from buffers."""
    keys = [k.encode() for k, _ in items]
    offsets = np.cumsum([0] + [len(k) for k in keys], dtype=np.int32)
    known = pa.Array.from_buffers(pa.string(), len(keys), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(keys))])
    values = [v for _, v in items]
    valid = np.packbits(np.array([v is not None for v in values]), bitorder="little")
    if pa.types.is_integer(type_):
        data = np.array([v or 0 for v in values], dtype=type_.to_pandas_dtype())
        mapped = pa.Array.from_buffers(type_, len(values), [pa.py_buffer(valid), pa.py_buffer(data)])
    else:
        texts = [(v or "").encode() for v in values]
        offs = np.cumsum([0] + [len(t) for t in texts], dtype=np.int32)
        mapped = pa.Array.from_buffers(
            pa.string(), len(texts), [pa.py_buffer(valid), pa.py_buffer(offs), pa.py_buffer(b"".join(texts))]
        )
    return known, mapped


def zero_is_null(values: pa.Array) -> pa.Array:
    """Coordinates: 0 means unknown (docs/data.md, facts), stored as null."""
    import pyarrow.compute as pc

    zeros = pa.Array.from_buffers(values.type, len(values), [None, pa.py_buffer(np.zeros(len(values)))])
    return pc.if_else(pc.not_equal(values, zeros), values, pa.nulls(len(values), values.type))


def wall_clock(array: pa.Array) -> pa.Array:
    """A zone-aware timestamp column as New York wall-clock time, the way TLC records trips.

    A plain cast would keep the UTC instant and so shift every trip by the zone's offset.
    """
    if not (pa.types.is_timestamp(array.type) and array.type.tz):
        return array
    import pyarrow.compute as pc

    return pc.local_timestamp(array.cast(pa.timestamp(array.type.unit, TLC_TIME_ZONE)))


def yes_no(flags: pa.Array) -> pa.Array:
    """A boolean flag as the data dictionary's Y/N text (true: Y); null stays null."""
    return _Y_N.take(flags.cast(pa.int8()))


_Y_N = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(np.array([0, 1, 2], np.int32)), pa.py_buffer(b"NY")])


def trimmed_numbers(text: pa.Array) -> pa.Array:
    """Numbers as text, read the way the CSV reader reads them: blanks around a number are
    trimmed and an empty value is null (blanks alone still fail the cast, as in a CSV)."""
    import pyarrow.compute as pc

    empty = pc.match_substring_regex(text, "^$")
    return pc.if_else(empty, pa.nulls(len(text), text.type), pc.utf8_trim_whitespace(text))


def not_decimal(array: pa.Array) -> list[int]:
    """Positions of text values that are not decimal integers (0x1F, 1e3, +5)."""
    import pyarrow.compute as pc

    other = pc.fill_null(pc.invert(pc.match_substring_regex(array, DECIMAL_INT)), False)
    return pc.indices_nonzero(other).to_pylist() if other.true_count else []


def canonical_batch(
    spec,
    batch: pa.RecordBatch,
    schema: pa.Schema,
    counts: CodeCounts,
    label: str,
    set_aside: SetAside | None = None,
) -> pa.RecordBatch:
    """`batch` (source columns under canonical names, any types; absent columns missing)
    as `schema` (the spec's declared columns).

    Zone-aware times become New York wall-clock times. A value that cannot be read as its
    declared type (text that is not a decimal integer included) raises ConversionError
    naming the column, or, with `set_aside`, sends its row there with the reason and drops it.
    """
    from taxi_assets.errors import ConversionError

    arrays: dict[str, pa.Array] = {}
    bad: dict[int, str] = {}
    names = set(batch.schema.names)
    for column in spec.columns:
        if column.name not in names:
            arrays[column.name] = pa.nulls(batch.num_rows, column.type)
            continue
        array = batch.column(column.name)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_dictionary(array.type):  # a dictionary-encoded column reads as its values
            array = array.dictionary_decode()
        if array.null_count == len(array):  # absent in this era, or typed null: nothing to map
            arrays[column.name] = array if array.type == column.type else pa.nulls(len(array), column.type)
            continue
        if column.codes == "flag" and pa.types.is_boolean(array.type):
            array = yes_no(array)
        if column.codes and (
            pa.types.is_string(array.type) or pa.types.is_large_string(array.type) or column.codes == "flag"
        ):
            array = map_codes(array, CODE_MAPS[column.codes], column.type, column.name, counts)
        elif array.type != column.type:
            array = wall_clock(array)
            if pa.types.is_timestamp(array.type) and array.type.unit == "ns" and pa.types.is_timestamp(column.type):
                # The lake keeps microseconds: digits below are dropped (truncated), never a reason
                # to refuse a row (ns to us cannot overflow).
                array = array.cast(column.type, safe=False)
            if pa.types.is_decimal(array.type) and pa.types.is_floating(column.type):
                # Through the decimal text: Arrow's direct cast can miss the nearest double (25.9 ->
                # 25.900000000000002); parsing the text rounds correctly, as from a CSV.
                array = array.cast(pa.string())
            is_text = pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
            if is_text and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
                array = trimmed_numbers(array)
            if pa.types.is_integer(column.type) and is_text:
                for i in not_decimal(array):
                    if set_aside is None:
                        raise ConversionError(
                            f"{label}: column {column.name} holds {array[i].as_py()!r}, which is not a decimal integer"
                        )
                    reason = f"{column.name}: {array[i].as_py()!r} is not a decimal integer"
                    bad[i] = f"{bad[i]}; {reason}" if i in bad else reason
                if bad:
                    array = _cast_valid(array, array.type, bad)  # nulled here, dropped below
        if array.type != column.type:
            try:
                array = array.cast(column.type)  # safe: fails rather than truncating
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                if set_aside is None:
                    raise ConversionError(
                        f"{label}: column {column.name} ({array.type}) cannot be read as {column.type}: {exc}"
                    ) from None
                for i in uncastable(array, column.type):
                    reason = f"{column.name}: {_python(array, i)!r} is not {column.type}"
                    bad[i] = f"{bad[i]}; {reason}" if i in bad else reason
                array = _cast_valid(array, column.type, bad)
        if column.coordinate or column.zero_is_null:
            array = zero_is_null(array)
        arrays[column.name] = array
    out = pa.RecordBatch.from_arrays([arrays[f.name] for f in schema], schema=schema)
    if bad:
        for i, reason in sorted(bad.items()):
            set_aside(reason, _record(batch, i))
        keep = pa.array([i not in bad for i in range(batch.num_rows)])
        out = out.filter(keep)
    return out


def _cast_valid(array: pa.Array, type_: pa.DataType, bad: dict[int, str]) -> pa.Array:
    """array cast to type_ with the rows in `bad` nulled first (they are dropped after)."""
    import pyarrow.compute as pc

    mask = pa.array([i in bad for i in range(len(array))])
    return pc.if_else(mask, pa.nulls(len(array), array.type), array).cast(type_)


def uncastable(values: pa.Array, type_: pa.DataType, offset: int = 0) -> list[int]:
    """Positions of the values arrow cannot cast safely to type_, by bisection: arrow's own
    rules, and cheap when (as in real files) few values are bad."""
    try:
        values.cast(type_)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(values) == 1:
            return [offset]
    half = len(values) // 2
    return uncastable(values[:half], type_, offset) + uncastable(values[half:], type_, offset + half)


def _python(array: pa.Array, i: int):
    """Value i as Python has it; a time Python's datetime cannot hold (after year 9999) as its
    text in numpy's calendar, so that a row set aside shows its true value."""
    try:
        return array[i].as_py()
    except (OverflowError, ValueError):
        if not pa.types.is_timestamp(array.type):
            raise
        ticks = array.slice(i, 1).view(pa.int64())[0].as_py()
        return str(np.datetime64(ticks, array.type.unit)).replace("T", " ")


def _record(batch: pa.RecordBatch, i: int) -> str:
    try:
        values = list(batch.slice(i, 1).to_pylist()[0].values())
    except (OverflowError, ValueError):  # a time after year 9999
        values = [_python(batch.column(j), i) for j in range(batch.num_columns)]
    return ",".join("" if v is None else str(v) for v in values)
