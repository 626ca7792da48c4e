# The two commands of the README: `make dev` and `make test`. Both set up .venv first.
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

.PHONY: install dev demo test bench clean

$(STAMP): setup.cfg pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	# The dbt project's manifest, offline (no dbt packages): loading the definitions then parses nothing.
	$(PY) -m taxi_assets.analytics prepare
	touch $(STAMP)

install: $(STAMP)

# At most two runs at once: a backfill's partitions share the machine's cores (see README, Performance).
$(DAGSTER_HOME)/dagster.yaml: Makefile
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 2\n' > $@

# The product on its embedded defaults (local lake folder, DuckDB file), real TLC source.
dev: install $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(VENV)/bin/dagster dev -w workspace.yaml

# Offline: a generated TLC-shaped mirror on 127.0.0.1 as the source, then the UI. Ctrl-C or a
# termination signal stops everything it started (mirror, dagster dev, its webserver and daemon).
demo: install $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) exec $(PY) -m taxi_assets.demo --root $(MIRROR_ROOT) --months $(DEMO_MONTHS) \
	  --port $(MIRROR_PORT) -- $(DEMO_DEV_ARGS)

# The deployment tests use a real PostgreSQL and Chromium from Debian's packages:
# installed and started here when missing (needs root, as on CI; a clear error otherwise).
test: install
	deploy/ci/install-chromium.sh
	TAXI_TEST_PG_URL="$${TAXI_TEST_PG_URL:-$$(deploy/ci/start-postgres.sh)}" $(PY) -m pytest

# Conversion vs DuckDB / pandas / gunzip on generated months (cached in .bench/), then Dagster's overhead
# and a year's backfill; the last line is `ours/duckdb_wall=R peak_mib=M rows=N`. See README, Performance.
bench: install
	$(PY) -m taxi_assets.bench all

clean:
	rm -rf $(VENV) data .dagster_home *.egg-info
