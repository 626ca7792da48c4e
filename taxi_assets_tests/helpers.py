"""Independent ways to look at files, so tests do not check our code with itself."""

from __future__ import annotations

import gzip
from pathlib import Path


def csv_data_rows(path: Path) -> int:
    """Data rows of a (gzipped) CSV: lines minus the header."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        return sum(1 for line in f if line.strip()) - 1


def mirror_file(root: Path, dataset: str, month: str) -> Path:
    return root / dataset / f"{dataset}_tripdata_{month}.csv.gz"
