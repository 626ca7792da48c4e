"""The offline TLC stand-in: generated files look like the real ones, the server
behaves like a well-mannered CDN, and its faults behave like badly-mannered ones."""

from __future__ import annotations

import csv
import email.utils
import gzip
import http.client
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import requests

from taxi_assets.spec.datasets import DATASETS
from taxi_assets.transform.reader import era_columns
from taxi_tools.mirror import Fault, MirrorServer, generate, header_for, relpath, spec_column_name
from taxi_tools.mirror.__main__ import main as cli_main
from taxi_tools.mirror.__main__ import parse_months

PROJECT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data"
# The package re-exports the function `generate`, which shadows the submodule name.
from taxi_tools.mirror import generator as generate_module  # noqa: E402

# Headers as published on the course mirror (docs/data.md, "Facts about the source"); yellow is also checked
# against the real sample file below.
REAL_GREEN = (
    "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,PULocationID,"
    "DOLocationID,passenger_count,trip_distance,fare_amount,extra,mta_tax,tip_amount,tolls_amount,"
    "ehail_fee,improvement_surcharge,total_amount,payment_type,trip_type,congestion_surcharge"
)
REAL_FHV_2019 = (
    "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,SR_Flag,Affiliated_base_number"
)
REAL_FHV_2020 = (
    "dispatching_base_num,pickup_datetime,dropoff_datetime,PULocationID,DOLocationID,SR_Flag,Affiliated_base_number"
)
INT_NULLABLE = {"VendorID", "passenger_count", "RatecodeID", "payment_type", "trip_type"}
MONTHS = ["2019-12", "2020-01"]
ROWS = 4000


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    counts = generate(root, ["yellow", "green", "fhv"], MONTHS, rows=ROWS, seed=7)
    assert counts == {(d, m): ROWS for d in ("yellow", "green", "fhv") for m in MONTHS}
    return root


def read_text(root: Path, dataset: str, month: str) -> str:
    return gzip.decompress((root / relpath(dataset, month)).read_bytes()).decode()


def read_rows(root: Path, dataset: str, month: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_text(root, dataset, month))))


def read_typed(root: Path, dataset: str, month: str) -> pa.Table:
    """Read with the declared spec types, mapping the file's header spellings."""
    spec = DATASETS[dataset]
    header = read_text(root, dataset, month).split("\n", 1)[0].split(",")
    types = {name: spec.column(spec_column_name(spec, name)).type for name in header}
    options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    return pacsv.read_csv(root / relpath(dataset, month), convert_options=options)


# ------------------------------------------------------------------ generator


def test_headers_are_the_real_ones(mirror_root: Path) -> None:
    real_yellow = (DATA / "yellow_tripdata_2020-07_sample.csv").read_text().split("\n", 1)[0].strip()
    expected = {"yellow": real_yellow, "green": REAL_GREEN}
    for month in MONTHS:
        for dataset in ("yellow", "green"):
            assert read_text(mirror_root, dataset, month).split("\n", 1)[0] == expected[dataset]
    assert read_text(mirror_root, "fhv", "2019-12").split("\n", 1)[0] == REAL_FHV_2019
    assert read_text(mirror_root, "fhv", "2020-01").split("\n", 1)[0] == REAL_FHV_2020
    assert header_for("fhv", "2021-07") == REAL_FHV_2020.split(",")


@pytest.mark.parametrize(
    "dataset,month", [("yellow", "2020-01"), ("green", "2019-12"), ("fhv", "2019-12"), ("fhv", "2020-01")]
)
def test_header_maps_onto_every_required_spec_column(dataset: str, month: str) -> None:
    spec = DATASETS[dataset]
    mapped = [spec_column_name(spec, name) for name in header_for(dataset, month)]
    assert len(set(mapped)) == len(mapped)
    # The columns the month's era (the spec table) says its files carry.
    era = [c for c in era_columns(spec, spec.era(month, "csv")) if spec.column(c).required]
    assert era and set(era) <= set(mapped)
    assert "airport_fee" not in mapped and "cbd_congestion_fee" not in mapped


def test_row_counts_and_layout(mirror_root: Path, tmp_path: Path) -> None:
    for dataset in ("yellow", "green", "fhv"):
        for month in MONTHS:
            path = mirror_root / dataset / f"{dataset}_tripdata_{month}.csv.gz"
            assert path.is_file()
            assert len(read_rows(mirror_root, dataset, month)) == ROWS
    zones = mirror_root / "misc" / "taxi_zone_lookup.csv"
    assert zones.read_bytes() == (DATA / "taxi_zone_lookup.csv").read_bytes()

    counts = generate(tmp_path, ["green"], ["2021-01", "2021-02", "2021-03"])
    assert len(set(counts.values())) == 3, "default sizes should differ by month"
    for (dataset, month), n in counts.items():
        assert 1000 <= n < 2000
        assert len(read_rows(tmp_path, dataset, month)) == n


def test_chunked_output_is_one_valid_gzip_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate_module, "CHUNK_ROWS", 1000)
    generate(tmp_path, ["yellow"], ["2021-03"], rows=3500)
    raw = (tmp_path / relpath("yellow", "2021-03")).read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00" and raw[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    rows = read_rows(tmp_path, "yellow", "2021-03")
    assert len(rows) == 3500
    in_month = [r["tpep_pickup_datetime"] for r in rows if r["tpep_pickup_datetime"].startswith("2021-03")]
    assert in_month == sorted(in_month), "pickups advance through the month across chunks"
    assert read_typed(tmp_path, "yellow", "2021-03").num_rows == 3500


def test_deterministic(tmp_path: Path) -> None:
    args = (["yellow", "fhv"], ["2020-06"])
    generate(tmp_path / "a", *args, seed=3)
    generate(tmp_path / "b", *args, seed=3)
    generate(tmp_path / "c", *args, seed=4)
    for dataset in args[0]:
        a, b, c = ((tmp_path / x / relpath(dataset, "2020-06")).read_bytes() for x in "abc")
        assert a == b
        assert a != c


def test_number_and_null_quirks(mirror_root: Path) -> None:
    rows = read_rows(mirror_root, "yellow", "2020-01")
    distances = [r["trip_distance"] for r in rows]
    assert any(d.startswith(".") for d in distances)  # .73
    assert all(len(d.split(".")[1]) == 2 for d in distances)  # 2.10
    fares = {r["fare_amount"] for r in rows}
    assert any("." not in f for f in fares) and any(f.endswith(".5") for f in fares)  # 8, 6.5
    assert {r["store_and_fwd_flag"] for r in rows} == {"N", "Y", ""}

    for dataset in ("yellow", "green"):
        ints = [c for c in header_for(dataset, "2020-01") if c in INT_NULLABLE]
        for month, want_empty in (("2019-12", False), ("2020-01", True)):
            rows = read_rows(mirror_root, dataset, month)
            empty = sum(1 for r in rows if any(r[c] == "" for c in ints))
            if want_empty:
                assert 0.01 * ROWS < empty < 0.06 * ROWS, (dataset, month, empty)
            else:
                assert empty == 0, (dataset, month)

    for month in MONTHS:
        assert {r["ehail_fee"] for r in read_rows(mirror_root, "green", month)} == {""}

    fhv = read_rows(mirror_root, "fhv", "2019-12")
    assert {r["SR_Flag"] for r in fhv} == {"", "1"}
    assert sum(r["SR_Flag"] == "" for r in fhv) > ROWS / 2
    assert 0 < sum(r["Affiliated_base_number"] == "" for r in fhv) < ROWS / 5
    assert all(r["dispatching_base_num"].startswith("B") for r in fhv)


@pytest.mark.parametrize("dataset", ["yellow", "green", "fhv"])
def test_parses_with_spec_types_and_values_are_sane(mirror_root: Path, dataset: str) -> None:
    spec = DATASETS[dataset]
    for month in MONTHS:
        table = read_typed(mirror_root, dataset, month)
        assert table.num_rows == ROWS
        names = {n: spec_column_name(spec, n) for n in table.column_names}
        df = table.rename_columns([names[n] for n in table.column_names]).to_pandas()

        pickup, dropoff = df[spec.pickup_column], df[spec.dropoff_column]
        assert (dropoff > pickup).all()
        outside = (pickup.dt.strftime("%Y-%m") != month).sum()
        assert 0 < outside < 0.015 * ROWS, outside
        assert (pickup[pickup.dt.strftime("%Y-%m") != month].dt.strftime("%Y-%m") != month).all()
        for col in spec.location_columns:
            assert df[col].between(1, 265).all()

        if spec.amount_column is None:
            continue
        parts = [
            "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "improvement_surcharge",
            "congestion_surcharge",
        ]  # fmt: skip
        assert (df[parts + ["total_amount", "trip_distance"]] >= 0).all().all()
        assert ((df[parts].sum(axis=1) - df["total_amount"]).abs() < 1e-6).all()
        has_nulls = int(df["VendorID"].isna().sum()) > 0
        assert has_nulls == (month >= "2020-01")


# ------------------------------------------------------------------ server


@pytest.fixture
def server(mirror_root: Path) -> Iterator[MirrorServer]:
    with MirrorServer(mirror_root) as srv:
        yield srv


YELLOW = relpath("yellow", "2020-01")


def test_head_and_get_headers(server: MirrorServer, mirror_root: Path) -> None:
    path = mirror_root / YELLOW
    st = path.stat()
    url = server.url_template.format(dataset="yellow", month="2020-01")
    assert url == f"http://127.0.0.1:{server.port}/{YELLOW}" == server.url(YELLOW)

    head = requests.head(url, timeout=5)
    get = requests.get(url, timeout=5)
    for resp in (head, get):
        assert resp.status_code == 200
        assert resp.headers["Content-Length"] == str(st.st_size)
        assert resp.headers["Content-Type"] == "application/gzip"
        assert resp.headers["ETag"].startswith('"') and resp.headers["ETag"].endswith('"')
        assert not resp.headers["ETag"].startswith("W/")
        modified = email.utils.parsedate_to_datetime(resp.headers["Last-Modified"])
        assert int(modified.timestamp()) == int(st.st_mtime)
    assert head.content == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert get.content == path.read_bytes()
    assert server.request_count(YELLOW) == 2
    assert server.request_count(YELLOW, "HEAD") == 1 and server.request_count(YELLOW, "GET") == 1

    zones = requests.get(server.zones_url, timeout=5)
    assert zones.headers["Content-Type"] == "text/csv"
    assert zones.content == (DATA / "taxi_zone_lookup.csv").read_bytes()


def test_conditional_requests_and_404(server: MirrorServer, mirror_root: Path, tmp_path: Path) -> None:
    url = server.url(YELLOW)
    etag = requests.head(url, timeout=5).headers["ETag"]
    for value in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        resp = requests.get(url, headers={"If-None-Match": value}, timeout=5)
        assert resp.status_code == 304 and resp.content == b""
        assert resp.headers["ETag"] == etag
    assert requests.get(url, headers={"If-None-Match": '"other"'}, timeout=5).status_code == 200

    assert requests.get(server.url_template.format(dataset="yellow", month="2030-01"), timeout=5).status_code == 404
    assert requests.head(server.url("yellow"), timeout=5).status_code == 404  # a directory


def test_real_files_are_served_as_is_and_republishing_changes_etag(tmp_path: Path) -> None:
    root = tmp_path / "root"
    real = root / "green" / "green_tripdata_2023-12.parquet"
    real.parent.mkdir(parents=True)
    shutil.copy(DATA / "green_tripdata_2023-12.parquet", real)
    (tmp_path / "secret.txt").write_text("outside root")
    with MirrorServer(root) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", "/../secret.txt")  # no escaping root
        assert conn.getresponse().status == 404
        conn.close()

        url = srv.url("green/green_tripdata_2023-12.parquet")
        first = requests.get(url, timeout=5)
        assert first.content == real.read_bytes()
        assert first.headers["Content-Type"] == "application/octet-stream"
        assert first.headers["Content-Length"] == str(real.stat().st_size)

        # The TLC republishes months in place; the validators must move with the bytes.
        real.write_bytes(real.read_bytes()[:-10])
        os.utime(real, ns=(time.time_ns(), time.time_ns() + 10**9))
        second = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
        assert second.status_code == 200
        assert second.headers["ETag"] != first.headers["ETag"]
        assert second.content == real.read_bytes()


def raw_get(server: MirrorServer, path: str) -> tuple[http.client.HTTPResponse, bytes, bool]:
    """GET over http.client; returns the response, the body read and whether it was complete."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/" + path)
    resp = conn.getresponse()
    try:
        body, complete = resp.read(), True
    except http.client.IncompleteRead as exc:
        body, complete = exc.partial, False
    conn.close()
    return resp, body, complete


def test_fault_status_for_first_n_requests(server: MirrorServer) -> None:
    server.set_fault(YELLOW, Fault("status", times=2, status=503, headers={"Retry-After": "1"}))
    url = server.url(YELLOW)
    first = requests.get(url, timeout=5)
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    assert requests.head(url, timeout=5).status_code == 503  # status faults also hit HEAD
    assert requests.get(url, timeout=5).status_code == 200
    assert server.request_count(YELLOW, "GET") == 2 and server.request_count(YELLOW) == 3

    server.set_fault(YELLOW, Fault("status", status=404))  # times=None: always
    assert [requests.get(url, timeout=5).status_code for _ in range(3)] == [404] * 3
    server.clear_faults()
    assert requests.get(url, timeout=5).status_code == 200


def test_fault_cut_and_wrong_length(server: MirrorServer, mirror_root: Path) -> None:
    data = (mirror_root / YELLOW).read_bytes()
    server.set_fault(YELLOW, Fault("cut", times=1, nbytes=1000))
    resp, body, complete = raw_get(server, YELLOW)
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(data))
    assert not complete and body == data[:1000]
    with pytest.raises(requests.exceptions.RequestException):
        server.set_fault(YELLOW, Fault("cut", times=1))
        requests.get(server.url(YELLOW), timeout=5)
    assert requests.get(server.url(YELLOW), timeout=5).content == data  # fault used up

    server.set_fault(YELLOW, Fault("wrong_length", extra_length=500))
    resp, body, complete = raw_get(server, YELLOW)
    assert resp.headers["Content-Length"] == str(len(data) + 500)
    assert not complete and body == data


def test_fault_trickle(tmp_path: Path) -> None:
    payload = os.urandom(2000)
    (tmp_path / "slow.bin").write_bytes(payload)
    with MirrorServer(tmp_path, faults={"slow.bin": Fault("trickle", nbytes=500, delay=0.1)}) as srv:
        started = time.monotonic()
        assert requests.get(srv.url("slow.bin"), timeout=5).content == payload
        assert time.monotonic() - started >= 0.3  # three pauses between four pieces

        srv.set_fault("slow.bin", Fault("trickle", nbytes=100, delay=2.0))
        with pytest.raises(requests.exceptions.ConnectionError):  # read timeout mid-body
            requests.get(srv.url("slow.bin"), timeout=(2, 0.3)).content
        started = time.monotonic()
    assert time.monotonic() - started < 2.0, "stop() must not wait for trickling handlers"


def test_fault_html_empty_truncated_and_body(server: MirrorServer, mirror_root: Path) -> None:
    data = (mirror_root / YELLOW).read_bytes()
    url = server.url(YELLOW)

    server.set_fault(YELLOW, Fault("html"))
    resp = requests.get(url, timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert resp.content.startswith(b"<!DOCTYPE html>")

    server.set_fault(YELLOW, Fault("empty"))
    resp = requests.get(url, timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Length"] == "0" and resp.content == b""

    server.set_fault(YELLOW, Fault("truncated_gzip", nbytes=5000))
    resp = requests.get(url, timeout=5)
    assert resp.headers["Content-Length"] == "5000" and resp.content == data[:5000]
    with pytest.raises(EOFError):
        gzip.decompress(resp.content)

    head = requests.head(url, timeout=5)  # body faults leave HEAD alone by default
    assert head.headers["Content-Length"] == str(len(data))

    server.set_fault(YELLOW, Fault("body", body=b"a,b\n1,2\n", times=1))
    resp = requests.get(url, timeout=5)
    assert resp.content == b"a,b\n1,2\n" and resp.headers["Content-Type"] == "application/gzip"
    assert resp.headers["ETag"] != head.headers["ETag"]
    assert requests.get(url, timeout=5).content == data


def test_fault_redirect(server: MirrorServer, mirror_root: Path) -> None:
    server.set_fault(YELLOW, Fault("redirect"))
    resp = requests.get(server.url(YELLOW), timeout=5)
    assert [r.status_code for r in resp.history] == [302]
    assert resp.status_code == 200 and resp.content == (mirror_root / YELLOW).read_bytes()
    assert "/_redirected/" in resp.url
    assert server.request_count(YELLOW) == 1


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Fault("explode")
    with pytest.raises(ValueError):
        Fault("body")


def test_concurrent_downloads(server: MirrorServer, mirror_root: Path) -> None:
    paths = [relpath(d, m) for d in ("yellow", "green", "fhv") for m in MONTHS]
    results: dict[str, bytes] = {}

    def fetch(p: str) -> None:
        with requests.Session() as session:  # keep-alive: two requests per connection
            session.head(server.url(p), timeout=5)
            results[p] = session.get(server.url(p), timeout=5).content

    threads = [threading.Thread(target=fetch, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(results[p] == (mirror_root / p).read_bytes() for p in paths)


# ------------------------------------------------------------------ CLI


def test_parse_months() -> None:
    assert parse_months("2020-11..2021-02") == ["2020-11", "2020-12", "2021-01", "2021-02"]
    assert parse_months("2021-01,2021-03..2021-04") == ["2021-01", "2021-03", "2021-04"]
    with pytest.raises(ValueError):
        parse_months("2021-03..2021-01")


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", "--root", str(tmp_path), "--datasets", "green,fhv", "--months", "2019-12..2020-01"]
    argv += ["--rows", "30"]
    assert cli_main(argv) == 0
    assert "120 rows" in capsys.readouterr().out
    assert len(read_rows(tmp_path, "fhv", "2020-01")) == 30
    assert (tmp_path / "misc" / "taxi_zone_lookup.csv").is_file()


def test_cli_serve_subprocess(mirror_root: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "taxi_tools.mirror", "serve", "--root", str(mirror_root), "--port", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT, env=env) as proc:
        try:
            line: list[str] = []
            reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))  # type: ignore[union-attr]
            reader.start()
            reader.join(15)
            assert line and line[0].startswith("http://127.0.0.1:"), (line, proc.poll())
            template = line[0].strip()
            assert template.endswith("/{dataset}/{dataset}_tripdata_{month}.csv.gz")
            resp = requests.get(template.format(dataset="green", month="2020-01"), timeout=5)
            assert resp.status_code == 200
            assert resp.content == (mirror_root / relpath("green", "2020-01")).read_bytes()
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert stderr == ""  # quiet: no per-request logging


@pytest.mark.first_case_in_check
@pytest.mark.parametrize(
    "dataset,month,fmt",
    [
        ("yellow", "2009-03", "csv"),
        ("yellow", "2010-11", "parquet"),
        ("green", "2014-08", "csv"),
        ("yellow", "2015-04", "csv"),
    ],
)
def test_coordinate_era_months_are_located_like_real_ones(tmp_path, dataset, month, fmt, zone_index):
    """`make demo`'s coordinate-era months pass their located checks: 1-3 % of the points in no
    zone, as in real months (0,0, water, outside the city), through the lake's own conversion."""
    from taxi_assets.geo.fill import ZoneFill
    from taxi_assets.transform.quarantine import convert_quarantining

    generate(tmp_path, [dataset], [month], formats=(fmt,))
    src = tmp_path / relpath(dataset, month, fmt)
    index = zone_index
    result, _ = convert_quarantining(
        DATASETS[dataset], month, src, tmp_path / "out.parquet", tmp_path / "q.csv", ZoneFill(lambda: index)
    )
    for side in ("pickups", "dropoffs"):
        assert 0.01 <= result.zones[f"unlocated_{side}_share"] <= 0.03, (side, result.zones)
