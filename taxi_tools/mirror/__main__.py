"""CLI: `python -m taxi_tools.mirror generate|serve ...` (see --help)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from taxi_tools.mirror.generator import generate
from taxi_tools.mirror.serve import MirrorServer


def parse_months(text: str) -> list[str]:
    """`2021-01..2021-03` (inclusive) and comma lists, mixed freely."""
    months: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("..")
        start = np.datetime64(first, "M")
        end = np.datetime64(last or first, "M")
        if end < start:
            raise ValueError(f"empty month range {part!r}")
        months.extend(str(m) for m in np.arange(start, end + 1))
    if not months:
        raise ValueError("no months given")
    return months


def _months_arg(text: str) -> list[str]:
    try:
        return parse_months(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad months {text!r}: {exc}") from None


def _cmd_generate(args: argparse.Namespace) -> int:
    def progress(dataset: str, month: str, rows: int) -> None:
        print(f"{dataset} {month}: {rows} rows", file=sys.stderr, flush=True)

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    counts = generate(
        args.root, datasets, args.months, rows=args.rows, seed=args.seed, progress=progress, formats=formats
    )
    print(f"wrote {len(counts)} months, {sum(counts.values())} rows each format under {args.root}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with MirrorServer(args.root, host=args.host, port=args.port, verbose=args.verbose) as server:
        # One line on stdout so a parent process can learn the port.
        print(server.url_template, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taxi_tools.mirror", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic TLC months under --root")
    gen.add_argument("--root", type=Path, required=True)
    gen.add_argument("--datasets", default="yellow,green,fhv", help="comma list, e.g. yellow,green,fhv,fhvhv")
    gen.add_argument(
        "--formats", default="csv", help="csv, parquet or csv,parquet: each month in its era's shape (datasets.py)"
    )
    gen.add_argument("--months", type=_months_arg, required=True, help="e.g. 2021-01..2021-03,2021-07")
    gen.add_argument("--rows", type=int, default=None, help="rows per month (default: ~1000-1500)")
    gen.add_argument("--seed", type=int, default=0)
    gen.set_defaults(func=_cmd_generate)

    srv = sub.add_parser("serve", help="serve --root over HTTP until SIGTERM/SIGINT")
    srv.add_argument("--root", type=Path, required=True)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=0, help="0 picks a free port")
    srv.add_argument("--verbose", action="store_true", help="log every request to stderr")
    srv.set_defaults(func=_cmd_serve)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
