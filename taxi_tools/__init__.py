"""Developer tools, not part of the product (installed by `pip install -e '.[dev]'`, not in the
image): the local TLC mirror (mirror/: `make demo`, the tests' source), the demo (demo.py),
the benchmarks (bench/: `make bench`) and the data docs generator (data_docs.py)."""
