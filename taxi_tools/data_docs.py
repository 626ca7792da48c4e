"""docs/data.md: per feed, the canonical table and every era, from the spec table, then the
facts about the source written by hand.

    .venv/bin/python -m taxi_tools.data_docs     rewrites the generated part (test_eras.py keeps it in step)
"""

from __future__ import annotations

from pathlib import Path

from taxi_assets.spec.datasets import DATASETS, SOURCE_MONTH_COLUMN
from taxi_assets.spec.eras import CODE_MAPS
from taxi_assets.transform.reader import column_lookup


def markdown() -> str:
    """docs/data.md: per feed, the canonical table and every era, from the spec table.

    `python -m taxi_tools.data_docs` rewrites this part of it (the facts written by hand below
    HAND_WRITTEN stay); a test keeps it in step.
    """
    out = [
        "# The data: feeds, eras and how they map",
        "",
        "Generated from the spec table (`taxi_assets/spec/datasets.py`) by `python -m taxi_tools.data_docs`;",
        "a test fails when it is out of step. The facts the code relies on, and where they come from,",
        'are at the end ("Facts about the source").',
        "",
        "Every era of a feed maps onto the feed's one table: names are matched by the spec's aliases,",
        "case-insensitively, after trimming; absent columns are null. Text codes become the current",
        "data dictionary's numbers ("
        + "; ".join(
            f"{kind}: " + ", ".join(f"`{k}`→{'null' if v is None else v}" for k, v in codes.items())
            for kind, codes in CODE_MAPS.items()
        )
        + "). A code nobody knows becomes null and is counted in the lake's `unknown_codes` metadata.",
        "A coordinate of `0` means unknown and is stored as null. A value that cannot be read as its",
        "declared type (a float that is not a whole number where an integer belongs) goes to the quarantine",
        "with its reason. Columns typed null, `__index_level_0__`, timestamps as text / ns / us, blank lines",
        "after a CSV header (LF or CRLF), rows with more (empty) fields than the header: all read as is (a",
        "value in a field past the header's last name sets its row aside).",
        "",
        "A month published in several shapes has one era per shape (same months, different columns): a file",
        "is read as the shape whose columns it has. A column its shape does not have is null; a file is refused",
        "(SchemaError) only when it lacks a column its shape has. Columns shown as (dropped) are not columns of",
        "the feed's table: they are reported in the lake's `dropped_columns` metadata.",
        "",
        "Every row is accounted for, every month: the lake step counts the file's records apart from the",
        "parser (a CSV's records from its bytes: non-blank lines after the header, a quoted line break not",
        "ending one; the Parquet footer's row count)",
        "and fails the month unless `rows_read` = `dagster/row_count` (published) + `set_aside_rows` (in the",
        "quarantine, each with its reason), naming the first lines when it does not hold. The three figures",
        "are in the lake's metadata of each month.",
        "",
    ]
    for spec in DATASETS.values():
        lookup = column_lookup(spec)
        out += [
            f"## {spec.name} (from {spec.first_month}; warehouse table `{spec.table}`)",
            "",
            "| column | type | notes |",
            "| --- | --- | --- |",
        ]
        for c in spec.columns:
            notes = []
            if c.codes:
                notes.append(f"{c.codes} codes")
            if c.coordinate:
                notes.append("coordinate: 0 → null; null where the era has location IDs")
            if c.zero_is_null:
                notes.append("0 (unknown) → null")
            if not c.required:
                notes.append("optional")
            if c.aliases:
                notes.append("also " + ", ".join(f"`{a}`" for a in c.aliases))
            out.append(f"| {c.name} | {c.type} | {'; '.join(notes)} |")
        out += [
            f"| {SOURCE_MONTH_COLUMN} | date32 | the month's first day (partition) |",
            "",
            "| months | format | columns as published (→ canonical) | quirks |",
            "| --- | --- | --- | --- |",
        ]
        for era in spec.eras:
            cols = []
            for name in era.header:
                canonical = lookup.get(name.strip().lower())
                if canonical is None:
                    cols.append(f"`{name}` (dropped)")
                    continue
                shown = f"`{name}`" if name.strip() == canonical else f"`{name}`→{canonical}"
                if canonical in era.text_codes:
                    shown += " (text)"
                cols.append(shown)
            quirks = []
            if era.format == "csv":
                quirks.append(line_ends(era))
            if era.trailing_empty_fields:
                quirks.append(f"{era.trailing_empty_fields} empty trailing field(s)")
            if era.quoted:
                quirks.append("fields quoted")
            if era.flags != "YN":
                quirks.append("flags 1/0")
            if era.format == "parquet":
                quirks.append(f"timestamps {era.timestamps}")
                quirks += [f"{c} {t}" for c, t in era.parquet_types]
                if era.index_column:
                    quirks.append("`__index_level_0__`")
            if era.note:
                quirks.append(era.note)
            out.append(f"| {era.months} | {era.format} | {', '.join(cols)} | {'; '.join(quirks)} |")
        out.append("")
    return "\n".join(out)


def line_ends(era) -> str:
    """How a CSV era's lines end, and its blank lines after the header, in words."""
    names = {"\n": "LF", "\r\n": "CRLF"}
    header = names[era.line_end if era.header_end is None else era.header_end]
    rows = names[era.line_end]
    blank = era.after_header.replace("\r\n", "CRLF ").replace("\n", "LF ").split()
    text = f"lines end in {rows}" if header == rows else f"header ends in {header}, rows in {rows}"
    if blank:
        text += f"; blank line(s) after the header: {', '.join(blank)}"
    return text


DOCS = Path(__file__).resolve().parents[1] / "docs" / "data.md"
# Everything from this line on in docs/data.md is written by hand.
HAND_WRITTEN = "<!-- Generated above by `python -m taxi_tools.data_docs`; written by hand below. -->"


def write_docs(path: Path = DOCS) -> None:
    """Replace the generated part of docs/data.md, keeping the hand-written facts."""
    _, marker, facts = path.read_text().partition(HAND_WRITTEN)
    path.write_text(markdown() + "\n" + marker + facts)


if __name__ == "__main__":
    write_docs()
