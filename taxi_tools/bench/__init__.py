"""`make bench`: how fast and how lean the lake conversion is, against DuckDB and the course's pandas flow.

`python -m taxi_tools.bench convert` times the variants of `variants.py` on
generated TLC-shaped months (`convert_bench.py`); `python -m taxi_tools.bench
dagster` times the same conversion through Dagster and a year's backfill
(`dagster_bench.py`).
"""
