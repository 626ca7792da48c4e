"""What the deployment tests share (import from here, not from conftest.py): a real PostgreSQL
database per test and the production instance yaml (deploy/dagster.yaml) installed in a temporary
DAGSTER_HOME."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg2
import yaml
from psycopg2 import sql

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
START_POSTGRES = DEPLOY / "ci" / "start-postgres.sh"


@dataclass(frozen=True)
class PgDatabase:
    host: str
    port: int
    user: str
    password: str
    name: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"

    def dagster_env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads its connection from."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.name,
        }

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        with contextlib.closing(psycopg2.connect(self.url)) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[PgDatabase]:
    """A new, empty database on the test server, dropped afterwards."""
    server = urlsplit(server_url)
    db = PgDatabase(
        host=server.hostname or "127.0.0.1",
        port=server.port or 5432,
        user=unquote(server.username or ""),
        password=unquote(server.password or ""),
        name=f"taxi_{uuid.uuid4().hex[:12]}",
    )

    def admin(statement: sql.Composable) -> None:
        with contextlib.closing(psycopg2.connect(server_url)) as conn:
            conn.autocommit = True  # CREATE/DROP DATABASE refuse to run in a transaction
            with conn.cursor() as cur:
                cur.execute(statement)

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.name)))
    try:
        yield db
    finally:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name)))


def install_instance(home: Path, overrides: dict | None = None) -> Path:
    """DAGSTER_HOME with the production dagster.yaml (deep-merged with `overrides`)."""
    home.mkdir(parents=True, exist_ok=True)
    if overrides is None:
        shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    else:
        config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
        (home / "dagster.yaml").write_text(yaml.safe_dump(_merge(config, overrides)))
    return home


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged
