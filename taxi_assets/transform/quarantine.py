"""Malformed CSV rows: set aside in a quarantine file with the reason, never dropped silently.

A file is first converted in the reader's fast mode (reader.py). Only when that stops
at a row it cannot read is the file converted again in the careful mode, which hands
every unreadable row to the quarantine file (CSV of `error`, `record`) and converts
the others with the same types and rules. One reader in two modes: both see the same
bytes, header and column mapping, so they cannot disagree about a file; clean files
pay nothing for this. A Parquet file is typed already: it is converted once, with a value
that does not fit its declared type (a float that is not a whole number where an integer
belongs, text that is not a decimal integer) set aside with its row (eras.canonical_batch).

When more than `CheckThresholds.malformed_rows_error` of the records are malformed,
the file is rejected instead (MalformedRowsError): a file that broken is more
likely misread than dirty. A file most of whose rows are malformed from its start is
rejected as soon as that shows (EARLY_STOP_ROWS, EARLY_STOP_SHARE), without reading and
setting aside the rest.

Every row is accounted for: the records of the file, counted apart from the parser
(a CSV's data lines from its bytes, a Parquet file's footer), must equal the rows
published plus the lines set aside; otherwise RowsUnaccountedError names the lines.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from taxi_assets.errors import MalformedRowsError, RowsUnaccountedError, StagingError, UnreadableRowError
from taxi_assets.spec.datasets import DatasetSpec
from taxi_assets.spec.months import normalize_month
from taxi_assets.transform.convert import ConvertResult, convert

if TYPE_CHECKING:
    from taxi_assets.geo.fill import ZoneFill

QUARANTINE_FILE_NAME = "rows.csv"
QUARANTINE_HEADER = ("error", "record")
EXAMPLES = 3
# Checked after each batch the reader hands on (16Ki CSV rows, 64Ki Parquet rows): once at
# least this many rows are read and more than this share of them (or the limit, when higher)
# were set aside, the file is refused there. Enough rows that a dirty stretch at the start
# of a good file does not stop it; a file that bad at its start is misread, whatever follows.
EARLY_STOP_ROWS = 10_000
EARLY_STOP_SHARE = 0.5


@dataclass
class Quarantine:
    """What was set aside: `rows` of the `records` read, a few examples, and the file.

    `lines` counts the file's lines in the set-aside rows: an unclosed quote makes one
    "row" of every line after it, and the share must see those lines, not one row.
    """

    rows: int = 0
    records: int = 0
    lines: int = 0
    examples: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def share(self) -> float:
        return self.lines / self.records if self.records else 0.0


def convert_quarantining(
    spec: DatasetSpec, month: str, src: Path, dst: Path, quarantine: Path, zones: ZoneFill | None = None
) -> tuple[ConvertResult, Quarantine]:
    """`convert.convert`, with unreadable rows set aside into `quarantine` (written
    only when there are any)."""
    label = f"{spec.name} {normalize_month(month)}"
    if not Path(src).name.lower().endswith(".parquet"):
        try:
            result = convert(spec, month, src, dst, zones=zones)
            found = Quarantine(records=result.rows)
            check_accounted(label, src, result, found)
            return result, found
        except UnreadableRowError:
            pass  # a row the fast mode cannot read: the careful mode sets such rows aside
    found = Quarantine()
    try:
        out = open(quarantine, "w", newline="")
    except OSError as exc:
        raise StagingError(f"{label}: cannot write the quarantine file {quarantine}: {exc}") from None
    with out:
        rows = csv.writer(out)
        rows.writerow(QUARANTINE_HEADER)

        def set_aside(reason: str, record: str) -> None:
            rows.writerow((reason, record))
            found.rows += 1
            found.lines += record.count("\n") + 1
            if len(found.examples) < EXAMPLES:
                found.examples.append(f"{reason}: {record[:120]}")

        limit = spec.thresholds.malformed_rows_error
        kept_rows = 0

        def kept(rows: int) -> None:
            nonlocal kept_rows
            kept_rows += rows
            read = kept_rows + found.lines
            if read >= EARLY_STOP_ROWS and found.lines > max(limit, EARLY_STOP_SHARE) * read:
                raise _too_many(label, src, found, read, limit, early=True)

        result = convert(spec, month, src, dst, set_aside=set_aside, zones=zones, kept=kept)
    found.records = result.rows + found.lines
    check_accounted(label, src, result, found)
    if not found.rows:
        quarantine.unlink()  # nothing set aside (a CSV: the fast mode's doubt was unfounded, e.g. '0x' in a text)
        return result, found
    if found.share > limit:
        raise _too_many(label, src, found, found.records, limit)
    found.path = quarantine
    return result, found


def set_aside_count(result: ConvertResult, found: Quarantine) -> int:
    return result.set_aside(found)


def check_accounted(label: str, src: Path, result: ConvertResult, found: Quarantine) -> None:
    """rows read = rows published + rows set aside, or RowsUnaccountedError saying which lines and why."""
    aside = set_aside_count(result, found)
    if result.rows_read == result.rows + aside:
        return
    lost = result.rows_read - result.rows - aside
    detail = "" if Path(src).name.lower().endswith(".parquet") else f"; {describe_lines(src)}"
    raise RowsUnaccountedError(
        f"{label}: {src} holds {result.rows_read:,} rows but {result.rows:,} were read and {aside:,} set aside: "
        f"{abs(lost):,} {'lost' if lost > 0 else 'more than the file holds'}{detail}"
    )


def describe_lines(src: Path, limit: int = 3) -> str:
    """The first data lines of a CSV, numbered, with their field counts against the header's."""
    from taxi_assets.transform.reader import csv_text_lines

    shown, header = [], None
    for number, fields in csv_text_lines(src):
        if header is None:
            header = len(fields)
            continue
        if len(shown) == limit:
            break
        text = ",".join(fields)
        shown.append(f"line {number} has {len(fields)} fields ({header} in the header): {text[:120]!r}")
    return "; ".join(shown) if shown else "no data line could be read"


def _too_many(
    label: str, src: Path, found: Quarantine, read: int, limit: float, early: bool = False
) -> MalformedRowsError:
    """The error of a file with more malformed rows than allowed, after `read` rows (all of
    them, or, `early`, the first ones: the rest was not read)."""
    first, rest = ("the first ", "; the rest was not read") if early else ("", "")
    return MalformedRowsError(
        f"{label}: {found.lines:,} of {first}{read:,} rows ({found.lines / read:.2%}) of {src} are malformed, "
        f"more than the {limit:.2%} allowed{rest}; e.g. {' | '.join(found.examples)}"
    )
