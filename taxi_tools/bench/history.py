"""The whole record at small size, and the plain-Python baseline that Dagster's backfill is held to.

`history_months` is every month the definitions offer for every trip dataset (or the
last N of each); `history_mirror` generates them once under `.bench/`. `baseline`
does what the backfill does to each month with the product's own functions (download
from the mirror, convert with set-aside of bad rows, publish in the lake, the lake
checks' figures, the warehouse load in one transaction per dataset) in two worker
processes and no Dagster, so the difference is what Dagster costs.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.spec.months import normalize_month, partition_key
from taxi_assets.spec.partitions import monthly_partitions
from taxi_tools.mirror import generate
from taxi_tools.mirror.generator import SHAPES_RELPATH, relpath, write_zones

WORKERS = 2


def history_months(last: int = 0, datasets: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """{dataset: [YYYY-MM, ...]}: every partition of every trip dataset, or of `datasets`
    (the last `last` when > 0)."""
    months = {}
    for name, spec in DATASETS.items():
        if datasets is not None and name not in datasets:
            continue
        keys = monthly_partitions(spec).get_partition_keys()
        months[name] = [normalize_month(k) for k in (keys[-last:] if last else keys)]
    return months


def month_format(dataset: str, month: str) -> str:
    """The course's CSV where an era of it exists, else TLC's Parquet (fhvhv, ...)."""
    return "csv" if DATASETS[dataset].era(month, "csv") else "parquet"


def history_mirror(root: Path, rows: int, months: dict[str, list[str]]) -> Path:
    folder = root / f"history-{rows}"
    for dataset, wanted in months.items():
        for fmt in ("csv", "parquet"):
            missing = [
                m for m in wanted
                if month_format(dataset, m) == fmt and not (folder / relpath(dataset, m, fmt)).exists()
            ]  # fmt: skip
            if missing:
                print(
                    f"generating {len(missing)} {dataset} {fmt} months of {rows:,} rows under {folder} ...", flush=True
                )
                generate(folder, [dataset], missing, rows=rows, formats=(fmt,))
    if not (folder / SHAPES_RELPATH).exists():  # months with coordinates are mapped to zones
        write_zones(folder)
    return folder


def source_urls(mirror_url_template: str) -> str:
    """TAXI_SOURCE_URL for the mirror: its CSV.gz files first, then its Parquet files."""
    return f"{mirror_url_template} {mirror_url_template.removesuffix('.csv.gz')}.parquet"


@dataclass(frozen=True)
class Task:
    dataset: str
    month: str
    url_template: str
    lake: str
    shapes: str  # the zone shapes as GeoParquet, with the stored zone index beside them


@functools.cache
def _zone_fill(shapes: str):
    """The zone fill of the lake step: the stored zone index of the shapes, read at the
    first month with coordinates, once per worker process (as a run reads it once)."""
    from taxi_assets.geo.fill import ZoneFill
    from taxi_assets.geo.stored import INDEX_FILE_NAME, read_index, shapes_version

    def load():
        index, why = read_index(Path(shapes).with_name(INDEX_FILE_NAME), shapes_version(Path(shapes)))
        if index is None:
            raise RuntimeError(f"baseline: {why}")
        return index

    return ZoneFill(load)


def _month(task: Task) -> tuple[str, str, str, int]:
    """raw -> lake -> check figures of one month, as the three steps of a run do it."""
    import warnings

    warnings.simplefilter("ignore")  # the definitions' beta notices, imported with the asset keys
    from taxi_assets.defs.assets.keys import lake_key, raw_key
    from taxi_assets.defs.assets.lake import LAKE_FILE_NAME
    from taxi_assets.geo.fill import has_coordinates
    from taxi_assets.source.resource import TaxiSource
    from taxi_assets.storage.io_manager import partition_folder
    from taxi_assets.storage.lake import LocalLakeStore
    from taxi_assets.storage.staging import DEFAULT_STAGING_DIR, StagedFile
    from taxi_assets.transform import quality
    from taxi_assets.transform.quarantine import QUARANTINE_FILE_NAME, convert_quarantining

    spec = DATASETS[task.dataset]
    store = LocalLakeStore(task.lake)
    source = TaxiSource(url_template=task.url_template)
    pk = partition_key(task.month)
    staged: list[StagedFile] = []
    # The staging folder the baseline's parent set for its workers (a run's comes from its resources).
    staging = os.environ.get("TAXI_STAGING_DIR", DEFAULT_STAGING_DIR)

    def new_dest(name: str) -> Path:  # the file keeps the name its source gives it
        staged.append(StagedFile.new(name, staging))
        return staged[-1].path

    try:
        source.download_first(spec, task.month, new_dest)
        raw = staged[-1]
        raw_rel = f"{partition_folder(raw_key(spec), pk)}/{raw.path.name}"
        store.publish(raw.path, raw_rel)
    finally:
        for file in staged:
            file.discard()
    lake = StagedFile.new(LAKE_FILE_NAME, staging)
    try:
        with store.local_path(raw_rel) as path:
            result, _ = convert_quarantining(
                spec,
                task.month,
                path,
                lake.path,
                lake.path.with_name(QUARANTINE_FILE_NAME),
                _zone_fill(task.shapes) if has_coordinates(spec) else None,
            )
        lake_rel = f"{partition_folder(lake_key(spec), pk)}/{LAKE_FILE_NAME}"
        store.publish(lake.path, lake_rel)
    finally:
        lake.discard()
    with store.local_path(lake_rel) as path:
        quality.month_figures(spec, task.month, path)
    return task.dataset, pk, lake_rel, result.rows


def _load(args: tuple[str, str, str, dict[str, str]]) -> int:
    from taxi_assets.defs.resources import warehouse_resource
    from taxi_assets.storage.lake import LakeObject, LocalLakeStore

    dataset, lake, warehouse_uri, files = args
    import warnings

    warnings.simplefilter("ignore")
    store = LocalLakeStore(lake)
    result = warehouse_resource(warehouse_uri).replace_months(
        DATASETS[dataset], {pk: LakeObject(store, rel) for pk, rel in files.items()}
    )
    return sum(result.rows_by_month.values())


def lake_shapes(mirror_root: Path, dest: Path) -> Path:
    """The lake's zone shapes file from the mirror's shapefile zip, and the zone index beside
    it (what lake/taxi_zone_shapes_lake writes)."""
    from taxi_assets.geo.shapes import read_shapefile_zip, write_shapes_parquet
    from taxi_assets.geo.stored import CACHE_ENV, INDEX_FILE_NAME, write_index

    zip_path = Path(mirror_root) / SHAPES_RELPATH
    write_shapes_parquet(read_shapefile_zip(zip_path, str(zip_path)), dest)
    write_index(dest, dest.with_name(INDEX_FILE_NAME), os.environ.get(CACHE_ENV))
    return dest


def baseline(
    work: Path, url_template: str, months: dict[str, list[str]], mirror_root: Path
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the workers') and warehouse rows of the whole history in WORKERS plain processes."""
    work.mkdir(parents=True, exist_ok=True)
    lake = str(work / "lake")
    warehouse_uri = f"duckdb:///{work / 'warehouse.duckdb'}"
    os.environ["TAXI_STAGING_DIR"] = str(work / "staging")  # inherited by the workers
    shapes = str(lake_shapes(mirror_root, work / "shapes.parquet"))  # set up before the clock, as Dagster's
    tasks = [Task(d, m, url_template, lake, shapes) for d, ms in months.items() for m in ms]
    started, cpu = time.perf_counter(), _children_cpu()
    # spawn: each worker starts and imports like a script would (no fork of this process).
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        files: dict[str, dict[str, str]] = {d: {} for d in months}
        for dataset, pk, rel, _ in pool.imap_unordered(_month, tasks):
            files[dataset][pk] = rel
        rows = sum(pool.map(_load, [(d, lake, warehouse_uri, files[d]) for d in months]))
        # The workers leave on their own once the queue closes (the `with` alone would SIGTERM
        # them and wait: forever if they inherited an ignored SIGTERM).
        pool.close()
        pool.join()
    return time.perf_counter() - started, _children_cpu() - cpu, rows


def _children_cpu() -> float:
    """CPU seconds of the finished (reaped) child processes: the pool's workers once it is closed."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
