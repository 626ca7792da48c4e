"""Malformed CSV rows: set aside in a quarantine file with the reason, never dropped silently.

convert.py's fast path reads a CSV with the declared types and stops at the first
malformed record. Only then does this module take over (`convert_quarantining`):
it reads the file again as text, sets aside every record with the wrong number of
fields (pyarrow's `invalid_row_handler`) or with a value that cannot be read as
its column's declared type, writes the other records to a clean copy and converts
that with the same fast path. So good rows are typed by the same code whether or
not their file had bad ones, and clean files pay nothing for this.

When more than `CheckThresholds.malformed_rows_error` of the records are malformed,
the file is rejected instead (MalformedRowsError): a file that broken is more
likely misread than dirty.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from taxi_assets.convert import ConvertResult, convert, csv_header, csv_read_types, resolve_columns
from taxi_assets.datasets import DatasetSpec
from taxi_assets.errors import ConversionError, MalformedRowsError, SchemaError
from taxi_assets.months import normalize_month

QUARANTINE_FILE_NAME = "rows.csv"
QUARANTINE_HEADER = ("error", "record")
EXAMPLES = 3


@dataclass
class Quarantine:
    """What was set aside: `rows` of the `records` read, a few examples, and the file."""

    rows: int = 0
    records: int = 0
    examples: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def share(self) -> float:
        return self.rows / self.records if self.records else 0.0


def convert_quarantining(
    spec: DatasetSpec, month: str, src: Path, dst: Path, quarantine: Path
) -> tuple[ConvertResult, Quarantine]:
    """`convert.convert`, with malformed CSV rows set aside into `quarantine` (a CSV
    of error and record, written only when there are any)."""
    label = f"{spec.name} {normalize_month(month)}"
    if Path(src).name.lower().endswith(".parquet"):
        return _convert_parquet(spec, month, label, Path(src), Path(dst), Path(quarantine))
    try:
        result = convert(spec, month, src, dst)
        return result, Quarantine(records=result.rows)
    except SchemaError:
        raise
    except (ConversionError, pa.ArrowInvalid) as exc:
        # (A bad row in the first block surfaces while the reader opens, as ArrowInvalid.)
        fast_path_error = exc if isinstance(exc, ConversionError) else ConversionError(
            f"{label}: cannot convert {src}: {exc}"
        )
    clean = dst.with_name(f"clean-{Path(src).name.removesuffix('.gz')}")
    try:
        found = split_malformed(spec, label, Path(src), clean, quarantine, normalize_month(month))
        if found.rows == 0:
            raise fast_path_error  # not a row problem: the fast path's error stands
        limit = spec.thresholds.malformed_rows_error
        if found.share > limit:
            raise MalformedRowsError(
                f"{label}: {found.rows:,} of {found.records:,} rows ({found.share:.2%}) of {src} are "
                f"malformed, more than the {limit:.2%} allowed; e.g. {' | '.join(found.examples)}"
            )
        result = convert(spec, month, clean, dst)
    finally:
        clean.unlink(missing_ok=True)
    return result, found


def _convert_parquet(
    spec: DatasetSpec, month: str, label: str, src: Path, dst: Path, quarantine: Path
) -> tuple[ConvertResult, Quarantine]:
    """A Parquet file is typed already; values that do not fit the declared type (a float
    that is not a whole number where an integer belongs) are set aside with their row."""
    found = Quarantine()
    with open(quarantine, "w", newline="") as out:
        rows_out = csv.writer(out)
        rows_out.writerow(QUARANTINE_HEADER)

        def set_aside(rows: list[tuple[str, str]]) -> None:
            rows_out.writerows(rows)
            found.rows += len(rows)
            found.examples += [f"{e}: {r[:120]}" for e, r in rows[: max(0, EXAMPLES - len(found.examples))]]

        result = convert(spec, month, src, dst, set_aside=set_aside)
    found.records = result.rows + found.rows
    limit = spec.thresholds.malformed_rows_error
    if found.share > limit:
        quarantine.unlink(missing_ok=True)
        raise MalformedRowsError(
            f"{label}: {found.rows:,} of {found.records:,} rows ({found.share:.2%}) of {src} are "
            f"malformed, more than the {limit:.2%} allowed; e.g. {' | '.join(found.examples)}"
        )
    if found.rows:
        found.path = quarantine
    else:
        quarantine.unlink()
    return result, found


def split_malformed(
    spec: DatasetSpec, label: str, src: Path, clean: Path, quarantine: Path, month: str | None = None
) -> Quarantine:
    """Copy src's well-formed records to `clean` (CSV, same header) and the others,
    with the reason, to `quarantine`. Streams: memory stays bounded."""
    header = csv_header(src, label)
    era = spec.era(month, "csv") if month else None
    mapping, _, _ = resolve_columns(spec, header, label, era)
    read_types = csv_read_types(spec, era)
    typed = {name: read_types[canonical] for name, canonical in mapping.items()}
    typed = {name: t for name, t in typed.items() if not pa.types.is_string(t)}
    wrong_width: list[pacsv.InvalidRow] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        wrong_width.append(row)
        return "skip"

    reader = pacsv.open_csv(
        src,
        read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
        parse_options=pacsv.ParseOptions(invalid_row_handler=set_aside),
        # The fast path's null handling, but every column as text, to look at it.
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    found = Quarantine()
    try:
        with pacsv.CSVWriter(clean, reader.schema) as clean_out, open(quarantine, "w", newline="") as out:
            set_aside_rows = csv.writer(out)
            set_aside_rows.writerow(QUARANTINE_HEADER)
            for batch in reader:
                errors = _bad_values(batch, typed)
                rows = [(f"expected {r.expected_columns} fields, got {r.actual_columns}", r.text) for r in wrong_width]
                rows += [(error, _record(batch, i)) for i, error in sorted(errors.items())]
                wrong_width.clear()
                if errors:
                    keep = pa.array([i not in errors for i in range(batch.num_rows)])
                    batch = batch.filter(keep)
                clean_out.write_batch(batch)
                found.records += batch.num_rows + len(rows)
                set_aside_rows.writerows(rows)
                found.rows += len(rows)
                found.examples += [f"{e}: {r[:120]}" for e, r in rows[: max(0, EXAMPLES - len(found.examples))]]
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise ConversionError(f"{label}: cannot read {src}: {exc}") from None
    if found.rows:
        found.path = quarantine
    else:
        quarantine.unlink()
    return found


def _bad_values(batch: pa.RecordBatch, typed: dict[str, pa.DataType]) -> dict[int, str]:
    """Row -> why it cannot be read with the declared types."""
    errors: dict[int, str] = {}
    for name, type_ in typed.items():
        values = batch.column(name)
        if pa.types.is_integer(type_) or pa.types.is_floating(type_):
            # The CSV reader trims blanks around numbers (not around timestamps).
            values = pc.utf8_trim_whitespace(values)
        for i in _uncastable(values, type_):
            reason = f"{name}: {batch.column(name)[i].as_py()!r} is not {type_}"
            errors[i] = f"{errors[i]}; {reason}" if i in errors else reason
    return errors


def _uncastable(values: pa.Array, type_: pa.DataType, offset: int = 0) -> list[int]:
    """Positions of the values arrow cannot cast to type_, by bisection: arrow's own
    parsing rules, and cheap when (as here) few values are bad."""
    try:
        values.cast(type_)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(values) == 1:
            return [offset]
    half = len(values) // 2
    return _uncastable(values[:half], type_, offset) + _uncastable(values[half:], type_, offset + half)


def _record(batch: pa.RecordBatch, i: int) -> str:
    """Row i as a CSV line of its original text (nulls were empty fields)."""
    values = ["" if v is None else v for v in batch.slice(i, 1).to_pylist()[0].values()]
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(values)
    return line.getvalue()
