"""A local stand-in for Google's OAuth token endpoint and the slice of the BigQuery REST
API the warehouse uses, for tests at the HTTP boundary of the real google-cloud-bigquery
client: what the BigQuery emulator of the tests (bigquery_emulator.py) cannot execute, the
loads into a partition decorator, and the exact requests (docs/google-cloud.md).

It records every request (method, path, query, headers, body) so tests can assert the
exact bodies the real client sends. Load jobs are checked the way BigQuery checks them
where it is cheap to do: the source Parquet is really read (from the fake GCS server or
from the uploaded bytes), its columns must be in the table (or in the job's schema, which
creates or, with WRITE_TRUNCATE, replaces a whole table), REQUIRED columns must have no
nulls, and every row must belong to the destination partition; the job's statistics are
computed from the file.

The fake runs no SQL: a query (jobs.query, or a query job and its jobs.getQueryResults)
is answered with the next of `query_answers`, which tests queue; except a script of
`ALTER TABLE t ADD COLUMN IF NOT EXISTS c TYPE;` statements, which it applies as BigQuery
does (the column appended, NULLABLE). A query job writing to a
destination is checked like a load: the table must exist (CREATE_NEVER), the answer's
columns must be the table's, and its rows must belong to the destination partition.
"""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow.compute as pc
import pyarrow.parquet as pq

BQ = "/bigquery/v2/projects/"
UPLOAD = "/upload/bigquery/v2/projects/"
SLOT_MS = 4321  # what the fake reports as each load job's slot time
PROJECT, DATASET = "taxi-project", "trips"  # the dataset the `fake_google` fixture serves
ALTER_ADD_COLUMN = r"ALTER TABLE `([^.`]+)\.([^.`]+)\.([^.`]+)` ADD COLUMN IF NOT EXISTS `([^`]+)` (\w+);\s*"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class FakeGoogle:
    datasets: set[tuple[str, str]] = field(default_factory=set)
    tables: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    token_assertions: list[str] = field(default_factory=list)
    # Queued answers to queries: (fields, rows) or (http_status, message).
    query_answers: list[tuple] = field(default_factory=list)
    # Partition decorators ("202102") whose load jobs fail with the given message.
    failing_partitions: dict[str, str] = field(default_factory=dict)
    uploads: dict[str, dict] = field(default_factory=dict)
    # job id -> the (fields, rows) answer of a query job, for jobs.getQueryResults.
    query_results: dict[str, tuple] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self):
        self._lock = threading.Lock()

    # -- what tests look at -------------------------------------------------
    def bigquery_client(self, project: str = PROJECT, location: str | None = None):
        """The real google-cloud-bigquery client, talking to this fake."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),
            location=location,
            client_options={"api_endpoint": self.url},
        )

    def calls(self, method: str, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    def load_configs(self) -> list[dict]:
        return [j["configuration"]["load"] for j in self.jobs.values() if "load" in j["configuration"]]

    # -- handlers -----------------------------------------------------------
    def handle(self, req: Recorded) -> tuple[int, dict, dict[str, str]]:
        with self._lock:
            self.requests.append(req)
            for method, pattern, name in ROUTES:
                match = re.fullmatch(pattern, req.path)
                if match and method in (None, req.method):
                    return getattr(self, name)(req, **match.groupdict())
        return error(404, f"no such endpoint {req.method} {req.path}")

    def _get_table(self, req: Recorded, project: str, dataset: str, table: str):
        found = self.tables.get((project, dataset, table))
        return (200, found, {}) if found else error(404, f"Not found: Table {project}:{dataset}.{table}")

    def _patch_table(self, req: Recorded, project: str, dataset: str, table: str):
        """tables.patch of the schema, with BigQuery's rule: existing columns stay as they are
        (name, type, mode, order); new ones are appended and NULLABLE."""
        found = self.tables.get((project, dataset, table))
        if not found:
            return error(404, f"Not found: Table {project}:{dataset}.{table}")
        old, new = found["schema"]["fields"], req.json["schema"]["fields"]
        strip = lambda f: (f["name"], f["type"], f.get("mode", "NULLABLE"))  # noqa: E731
        if [strip(f) for f in new[: len(old)]] != [strip(f) for f in old]:
            return error(400, f"Provided Schema does not match Table {project}:{dataset}.{table}")
        if any(f.get("mode") == "REQUIRED" for f in new[len(old) :]):
            return error(400, "Cannot add required fields to an existing schema")
        found["schema"] = {"fields": new}
        found["etag"] = uuid.uuid4().hex
        return 200, found, {}

    def _delete_table(self, req: Recorded, project: str, dataset: str, table: str):
        if self.tables.pop((project, dataset, table), None) is None:
            return error(404, f"Not found: Table {project}:{dataset}.{table}")
        return 204, {}, {}

    def _get_job(self, req: Recorded, project: str, job: str):
        found = self.jobs.get(job)
        return (200, found, {}) if found else error(404, f"Not found: Job {project}:{job}")

    def _post_job(self, req: Recorded, project: str):
        return self._insert_job(project, req.json, None)

    def _token(self, req: Recorded):
        form = parse_qs(req.body.decode())
        token = f"ya29.fake-{uuid.uuid4().hex}"
        self.token_assertions.append(form.get("assertion", [""])[0])
        self.issued_tokens.append(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}, {}

    def _create_table(self, req: Recorded, project: str, dataset: str):
        body = req.json
        if (project, dataset) not in self.datasets:
            return error(404, f"Not found: Dataset {project}:{dataset}")
        table_id = body["tableReference"]["tableId"]
        key = (project, dataset, table_id)
        if key in self.tables:
            return error(409, f"Already Exists: Table {project}:{dataset}.{table_id}")
        resource = {
            **body,
            "kind": "bigquery#table",
            "id": f"{project}:{dataset}.{table_id}",
            "type": "TABLE",
            "creationTime": "1700000000000",
            "etag": uuid.uuid4().hex,
        }
        self.tables[key] = resource
        return 200, resource, {}

    def _upload(self, req: Recorded, project: str):
        upload_id = req.query.get("upload_id", [None])[0]
        if req.method == "POST" and upload_id is None:  # start of a resumable upload
            upload_id = uuid.uuid4().hex
            self.uploads[upload_id] = {"metadata": req.json, "data": b"", "project": project}
            location = f"{self.url}{req.path}?uploadType=resumable&upload_id={upload_id}"
            return 200, {}, {"Location": location}
        upload = self.uploads[upload_id]
        upload["data"] += req.body
        total = req.headers.get("content-range", "").rsplit("/", 1)[-1]
        if total == "*" or int(total) > len(upload["data"]):
            return 308, {}, {"Range": f"bytes=0-{len(upload['data']) - 1}"}
        return self._insert_job(upload["project"], upload["metadata"], upload["data"])

    def _insert_job(self, project: str, body: dict, uploaded: bytes | None):
        ref = {**body["jobReference"], "projectId": project}
        ref.setdefault("location", "US")
        job = {
            "kind": "bigquery#job",
            "id": f"{project}:{ref['location']}.{ref['jobId']}",
            "jobReference": ref,
            "configuration": body["configuration"],
            "status": {"state": "DONE"},
            "statistics": {"creationTime": "1700000000000", "startTime": "1700000000001", "endTime": "1700000000002"},
        }
        try:
            if "load" in body["configuration"]:
                job["statistics"]["load"] = self._run_load(project, body["configuration"]["load"], uploaded)
                job["statistics"]["totalSlotMs"] = str(SLOT_MS)
            elif "query" in body["configuration"]:
                self.query_results[ref["jobId"]] = self._run_query_job(body["configuration"]["query"])
        except LoadError as exc:
            problem = {"reason": exc.reason, "message": str(exc)}
            job["status"] = {"state": "DONE", "errorResult": problem, "errors": [problem]}
        self.jobs[ref["jobId"]] = job
        return 200, job, {}

    def _run_query_job(self, query: dict) -> tuple:
        alters = re.findall(ALTER_ADD_COLUMN, query["query"])
        if alters and not re.sub(ALTER_ADD_COLUMN, "", query["query"]).strip():
            for project, dataset, table_id, name, type_ in alters:
                table = self.tables.get((project, dataset, table_id))
                if table is None:
                    raise LoadError(f"Not found: Table {project}:{dataset}.{table_id}", "notFound")
                fields = table["schema"]["fields"]
                if name.lower() not in {f["name"].lower() for f in fields}:
                    fields.append({"name": name, "type": type_, "mode": "NULLABLE"})
            return [], []
        if not self.query_answers:
            raise LoadError("the fake has no answer queued for this query")
        answer = self.query_answers.pop(0)
        if isinstance(answer[0], int):
            raise LoadError(answer[1], reason={404: "notFound"}.get(answer[0], "invalid"))
        dest = query.get("destinationTable")
        if dest is not None:
            fields, rows = answer
            table_id, _, decorator = dest["tableId"].partition("$")
            table = self.tables.get((dest["projectId"], dest["datasetId"], table_id))
            if table is None:  # the table is not created: the jobs here say CREATE_NEVER
                raise LoadError(f"Not found: Table {dest['projectId']}:{dest['datasetId']}.{table_id}", "notFound")
            if [f["name"] for f in fields] != [f["name"] for f in table["schema"]["fields"]]:
                raise LoadError(f"Query column list does not match table {table_id}'s schema")
            field_name = table.get("timePartitioning", {}).get("field")
            if decorator and field_name:
                column = [f["name"] for f in fields].index(field_name)
                months = {str(row[column]).replace("-", "")[:6] for row in rows}
                if months - {decorator}:
                    raise LoadError(
                        f"Some rows belong to different partitions rather than destination partition {decorator}"
                    )
        return answer

    def _get_query_results(self, req: Recorded, project: str, job: str):
        if job not in self.query_results:
            return error(404, f"Not found: Job {project}:{job}")
        fields, rows = self.query_results[job]
        return 200, query_response(self.jobs[job]["jobReference"], fields, rows), {}

    def _run_load(self, project: str, load: dict, uploaded: bytes | None) -> dict:
        dest = load["destinationTable"]
        table_id, _, decorator = dest["tableId"].partition("$")
        key = (dest["projectId"], dest["datasetId"], table_id)
        table = self.tables.get(key)
        if table is None and "schema" not in load:
            raise LoadError(f"Not found: Table {dest['projectId']}:{dest['datasetId']}.{table_id}", "notFound")
        if decorator in self.failing_partitions:
            raise LoadError(self.failing_partitions[decorator])
        if load.get("sourceFormat") != "PARQUET":
            raise LoadError("the fake only loads PARQUET")
        data = uploaded if uploaded is not None else b"".join(read_gs(uri) for uri in load["sourceUris"])
        rows = pq.read_table(io.BytesIO(data))
        fields = load["schema"]["fields"] if "schema" in load else table["schema"]["fields"]
        known = {f["name"].lower() for f in fields}
        unknown = [n for n in rows.column_names if n.lower() not in known]
        if unknown:
            raise LoadError(f"Provided Schema does not match Table: no such field: {unknown[0]}")
        for f in fields:
            if f.get("mode") == "REQUIRED" and (f["name"] not in rows.column_names or rows[f["name"]].null_count):
                raise LoadError(f"Required field {f['name']} cannot be null")
        replaces = table is None or load.get("writeDisposition") == "WRITE_TRUNCATE"
        if "schema" in load and not decorator and replaces:
            # A whole-table load with a schema creates the table, or replaces it with WRITE_TRUNCATE.
            self.tables[key] = {
                "tableReference": {"projectId": key[0], "datasetId": key[1], "tableId": table_id},
                "schema": load["schema"],
                "numRows": str(rows.num_rows),
            }
            table = self.tables[key]
        field_name = table.get("timePartitioning", {}).get("field")
        if decorator and field_name:
            months = pc.unique(pc.strftime(rows[field_name], format="%Y%m")).to_pylist()
            if set(months) - {decorator}:
                raise LoadError(
                    f"Some rows belong to different partitions rather than destination partition {decorator}"
                )
        return {
            "inputFiles": str(len(load.get("sourceUris", [None]))),
            "inputFileBytes": str(len(data)),
            "outputRows": str(rows.num_rows),
            "outputBytes": str(rows.nbytes),
        }

    def _query(self, req: Recorded, project: str):
        if not self.query_answers:
            return error(400, "the fake has no answer queued for this query")
        answer = self.query_answers.pop(0)
        if isinstance(answer[0], int):
            return error(*answer)
        fields, rows = answer
        ref = {"projectId": project, "jobId": f"q_{uuid.uuid4().hex}", "location": "US"}
        return 200, query_response(ref, fields, rows), {}


def query_response(job_reference: dict, fields: list[dict], rows: list[tuple]) -> dict:
    return {
        "kind": "bigquery#queryResponse",
        "jobReference": job_reference,
        "schema": {"fields": fields},
        "rows": [{"f": [{"v": None if v is None else str(v)} for v in row]} for row in rows],
        "totalRows": str(len(rows)),
        "jobComplete": True,
    }


class LoadError(Exception):
    """A job's failure (its errorResult)."""

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


ROUTES = [
    ("POST", r"/token", "_token"),
    ("POST", BQ + r"(?P<project>[^/]+)/datasets/(?P<dataset>[^/]+)/tables", "_create_table"),
    ("GET", BQ + r"(?P<project>[^/]+)/datasets/(?P<dataset>[^/]+)/tables/(?P<table>[^/]+)", "_get_table"),
    ("PATCH", BQ + r"(?P<project>[^/]+)/datasets/(?P<dataset>[^/]+)/tables/(?P<table>[^/]+)", "_patch_table"),
    ("DELETE", BQ + r"(?P<project>[^/]+)/datasets/(?P<dataset>[^/]+)/tables/(?P<table>[^/]+)", "_delete_table"),
    ("POST", BQ + r"(?P<project>[^/]+)/jobs", "_post_job"),
    ("GET", BQ + r"(?P<project>[^/]+)/jobs/(?P<job>[^/]+)", "_get_job"),
    ("POST", BQ + r"(?P<project>[^/]+)/queries", "_query"),
    ("GET", BQ + r"(?P<project>[^/]+)/queries/(?P<job>[^/]+)", "_get_query_results"),
    (None, UPLOAD + r"(?P<project>[^/]+)/jobs", "_upload"),
]


def error(status: int, message: str):
    reason = {404: "notFound", 409: "duplicate"}.get(status, "invalid")
    problem = {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}
    return status, {"error": problem}, {}


def read_gs(uri: str) -> bytes:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    client = storage.Client(project="fake", credentials=AnonymousCredentials())
    return client.bucket(bucket).blob(name).download_as_bytes()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeGoogle

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Recorded(
            self.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body
        )
        status, payload, headers = self.fake.handle(req)
        data = json.dumps(payload).encode() if payload else b""
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, *args):
        pass


class FakeGoogleServer:
    """`with FakeGoogleServer() as fake:` serves a `FakeGoogle` on 127.0.0.1 (free port)."""

    def __init__(self):
        self.fake = FakeGoogle()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.fake.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGoogle:
        # A short poll interval: shutdown() waits for the loop's next poll.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self.fake

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
