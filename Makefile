# The two commands of the README: `make dev` and `make test`. Both set up .venv first.
# `make check` is the inner loop (no root, no slow tests); `make test` is everything, as CI runs it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
MIRROR_ROOT ?= $(CURDIR)/data/mirror
MIRROR_PORT ?= 8765
# Any months of any feed, in each era's shape, e.g. DEMO_MONTHS=2009-03,2010-11,2014-08,2015-04,2016-09,2017-05,2018-06,2019-02
DEMO_MONTHS ?= 2021-01..2021-03
DEMO_DEV_ARGS ?= -w workspace.yaml

.PHONY: install dev demo lint check test bench bench-quick clean

$(STAMP): setup.cfg pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	# The dbt project's manifest, offline (no dbt packages): loading the definitions then parses nothing.
	$(PY) -m taxi_assets.analytics prepare
	touch $(STAMP)

install: $(STAMP)

# The local instance: a run queue of two, Dagster's SQLite storage with an event log that keeps
# its database engines, and run monitoring that fails a run whose process was killed
# (taxi_assets/dagster_local.yaml).
$(DAGSTER_HOME)/dagster.yaml: taxi_assets/dagster_local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp taxi_assets/dagster_local.yaml $@

# The product on its embedded defaults (local lake folder, DuckDB file), real TLC source.
dev: install $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(VENV)/bin/dagster dev -w workspace.yaml

# Offline: a generated TLC-shaped mirror on 127.0.0.1 as the source, then the UI. Ctrl-C or a
# termination signal stops everything it started (mirror, dagster dev, its webserver and daemon).
demo: install $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) exec $(PY) -m taxi_tools.demo --root $(MIRROR_ROOT) --months $(DEMO_MONTHS) \
	  --port $(MIRROR_PORT) -- $(DEMO_DEV_ARGS)

# Lint, format, the dbt models' SQL and the definitions as `dg` loads them (VIRTUAL_ENV: dg checks it is ours).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/sqlfluff lint taxi_assets/analytics/dbt_project/models
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg check defs

# The inner loop: lint, then the unit and integration tests (real mirror, DuckDB, fake-gcs-server, a BigQuery emulator,
# Dagster runs in the test process); not the `deploy` ones (processes, PostgreSQL, Chromium).
# Two test processes (pytest-xdist), a test file each at a time: module fixtures stay one per file.
check: lint
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "(unit or integration) and not slow"

# Everything, as CI runs it. The deployment tests use a real PostgreSQL and Chromium from Debian's
# packages: installed and started here when missing (needs root, as on CI; a clear error otherwise).
# Two test processes as in `check`, a file each at a time: the deployment tests spend most of their
# time waiting on the daemon's 30 s cadence and on services, the other process fills the cores.
# A PostgreSQL cluster started here is stopped when the tests end (TAXI_TEST_PG_STARTED names
# it for taxi_assets_tests/conftest.py); one that was already running is left running.
test: lint
	deploy/ci/install-chromium.sh
	export TAXI_TEST_PG_STARTED="$$(mktemp -d)/started"; \
	TAXI_TEST_PG_URL="$${TAXI_TEST_PG_URL:-$$(deploy/ci/start-postgres.sh)}" $(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# Conversion (CSV.gz and TLC-shaped Parquet months, generated and cached in .bench/) vs DuckDB,
# Polars, pandas; the definitions' import time; the whole record's backfill through Dagster vs
# plain Python; the UI in headless Chromium. The last line is one summary line of ratios.
# Self-contained (no network); see docs/performance.md. bench-quick: the same, small inputs.
bench: install
	deploy/ci/install-chromium.sh
	$(PY) -m taxi_tools.bench all

bench-quick: install
	deploy/ci/install-chromium.sh
	$(PY) -m taxi_tools.bench all --quick

clean:
	rm -rf $(VENV) data .dagster_home *.egg-info
