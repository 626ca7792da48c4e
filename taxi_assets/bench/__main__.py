"""python -m taxi_assets.bench convert|dagster|all [options]; see README "Performance"."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taxi_assets.bench.convert_bench import run_bench, summarize
from taxi_assets.bench.variants import VARIANTS


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taxi_assets.bench", description=__doc__)
    parser.add_argument("what", nargs="?", default="convert", choices=["convert", "dagster", "fhvhv", "all"])
    parser.add_argument("--dir", type=Path, default=Path(".bench"), help="cache of generated months (default .bench)")
    parser.add_argument("--rows", type=_ints, default=[1_400_000, 7_700_000], help="month sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--month", default="2021-01")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--backfill-rows", type=int, default=1_000_000, help="rows per generated month in the backfill (default 1,000,000)")
    parser.add_argument(
        "--fhvhv-rows", type=int, default=20_000_000, help="rows of the fhvhv Parquet month (default 20M)"
    )
    args = parser.parse_args(argv)
    if args.what in ("fhvhv", "all"):
        from taxi_assets.bench.convert_bench import run_fhvhv_bench

        print("\n".join(run_fhvhv_bench(args.dir, args.fhvhv_rows, max(1, min(args.repeats, 2)))))
    if args.what in ("dagster", "all"):
        from taxi_assets.bench.dagster_bench import run_dagster_bench

        run_dagster_bench(args.dir, min(args.rows), args.month, args.backfill_rows, args.repeats)
    if args.what in ("convert", "all"):
        variants = [v for v in args.variants.split(",") if v]
        sizes = sorted(args.rows)
        runs = run_bench(args.dir, sizes, variants, args.repeats, args.month)
        print("\n".join(summarize(runs, sizes, variants)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
