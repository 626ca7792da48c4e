"""python -m taxi_tools.bench convert|parquet|dagster|backfill|defs|geo|zones|all [--quick] [options]; see README "Performance".

The last line printed is one summary line of every part that ran, e.g.
`csv_ours/best_peer=0.70 parquet_ours/best_peer=0.85 parquet_peak_mib=250 backfill_dagster/python=1.40 defs_import_s=1.2 ui_max_s=2.1`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taxi_tools.bench.convert_bench import csv_cases, parquet_cases, run_bench, summarize
from taxi_tools.bench.parquet_months import SHAPES
from taxi_tools.bench.variants import VARIANTS

# `--quick`: the same parts on small inputs, a few minutes in all.
QUICK = {
    "rows": [200_000, 1_000_000],
    "parquet_rows": [200_000, 2_000_000],
    "repeats": 1,
    "backfill_rows": 500,
    "backfill_months": 6,
    "realistic_rows": 200_000,
    "realistic_months": 4,
    "overhead_rows": 200_000,
    "variants": "ours,duckdb,duckdb-typed,polars",  # the slow pandas flow only in the full bench
}


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taxi_tools.bench", description=__doc__)
    parser.add_argument(
        "what",
        nargs="?",
        default="convert",
        choices=["convert", "parquet", "dagster", "backfill", "defs", "geo", "zones", "all"],
    )
    parser.add_argument("--quick", action="store_true", help="small inputs, one repetition: a few minutes")
    parser.add_argument("--dir", type=Path, default=Path(".bench"), help="cache of generated months (default .bench)")
    parser.add_argument("--rows", type=_ints, default=[1_400_000, 7_700_000], help="CSV month sizes, comma-separated")
    parser.add_argument("--parquet-rows", type=_ints, default=[1_000_000, 20_000_000], help="Parquet month sizes")
    parser.add_argument(
        "--parquet-shapes", default=",".join(SHAPES), help="comma-separated subset of " + ", ".join(SHAPES)
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--month", default="2021-01", help="the CSV month")
    parser.add_argument("--parquet-month", default="2019-06")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="CSV variants: subset of " + ", ".join(VARIANTS))
    parser.add_argument(
        "--overhead-rows",
        type=int,
        default=1_400_000,
        help="rows of the month timed through `dagster asset materialize`",
    )
    parser.add_argument(
        "--backfill-rows", type=int, default=3000, help="rows per generated month in the whole-history backfill"
    )
    parser.add_argument(
        "--backfill-months", type=int, default=0, help="only the last N months of each dataset (0: all)"
    )
    parser.add_argument(
        "--backfill-max-runs",
        type=int,
        default=None,
        help="the run queue's max_concurrent_runs for the backfill (default: what `make dev` sets)",
    )
    parser.add_argument(
        "--realistic-rows", type=int, default=1_400_000, help="rows per yellow month of the realistic backfill"
    )
    parser.add_argument("--realistic-months", type=int, default=12, help="months of the realistic backfill")
    parser.add_argument("--no-ui", action="store_true", help="skip the headless-browser timings")
    parser.add_argument("--points", type=int, default=1_000_000, help="points of the geo bench (coordinates -> zones)")
    parser.add_argument(
        "--zones-rows", type=int, default=14_000_000, help="rows of the 2009-shaped month (zones bench)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if parser.get_default(name) == getattr(args, name):
                setattr(args, name, value)
    summary: dict[str, str] = {}
    if args.what in ("geo", "all"):
        from taxi_tools.bench.geo_bench import run_geo_bench

        print("\n".join(run_geo_bench(args.points, args.repeats)))
    if args.what in ("zones", "all"):
        from taxi_tools.bench.geo_bench import run_zones_bench

        print("\n".join(run_zones_bench(args.dir, args.zones_rows, args.repeats)))
    if args.what == "defs":  # the definitions' import alone (part of `dagster`): seconds
        from taxi_tools.bench.dagster_bench import definitions_load

        cost = definitions_load(args.dir, repeats=max(args.repeats, 5))
        summary |= {"defs_import_s": f"{cost.wall_s:.2f}", "defs_import_cpu_s": f"{cost.cpu_s:.2f}"}
    if args.what in ("dagster", "all"):
        from taxi_tools.bench.dagster_bench import run_dagster_bench

        summary |= run_dagster_bench(
            args.dir,
            args.overhead_rows,
            args.month,
            args.backfill_rows,
            args.backfill_months,
            args.repeats,
            ui=not args.no_ui,
            max_runs=args.backfill_max_runs,
        )
    if args.what in ("backfill", "all"):
        from taxi_tools.bench.dagster_bench import definitions_load, realistic_backfill

        cost = definitions_load(args.dir, repeats=3)
        lines, figures = realistic_backfill(args.dir, args.realistic_rows, args.realistic_months, cost.wall_s)
        print("\n".join(lines), flush=True)
        summary |= figures
    cases = []
    if args.what in ("convert", "all"):
        cases += csv_cases(args.dir, args.rows, [v for v in args.variants.split(",") if v], args.month)
    if args.what in ("parquet", "all"):
        shapes = [s for s in args.parquet_shapes.split(",") if s]
        cases += parquet_cases(args.dir, args.parquet_rows, shapes, args.parquet_month)
    if cases:
        runs = run_bench(args.dir, cases, args.repeats)
        lines, figures = summarize(runs, cases)
        print("\n".join(lines))
        summary = figures | summary
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
