# Sluice: two commands for a newcomer, `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test faults hostile lint format bench bench-parsers bench-query bench-live bench-syslog bench-ingest bench-growth flamegraphs schemathesis browser rsyslog wrk clean

## run: set everything up, start web, worker, beat and Flower, print where to look
run: $(STAMP)
	$(PY) -m scripts.devstack run

## test: set everything up, check the layers (lint), run the whole suite against real PostgreSQL and Redis
test: $(STAMP) browser rsyslog lint
	$(PY) -m scripts.devstack test $(PYTEST_ARGS)

## faults: the fault suite at full size, one fault per 50,000-log load (docs/faults.md);
## the table goes to the file FAULTS_REPORT names, else to the terminal. `make test` runs it at 5,000.
faults: $(STAMP)
	FAULTS_LOGS=$${FAULTS_LOGS:-50000} FAULTS_OUTAGE=$${FAULTS_OUTAGE:-20} \
		FAULTS_BEAT_PAUSE=$${FAULTS_BEAT_PAUSE:-60} \
		$(PY) -m scripts.devstack test tests/faults $(PYTEST_ARGS)

# The venv is rebuilt only when a requirements file or pyproject.toml changes. The project
# itself is installed editable without dependencies (they are the pinned ones above), so
# `.venv/bin/sluice` (the command-line client) exists and runs this checkout's code.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (log: $(VENV)/pip.log)"
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt > $(VENV)/pip.log 2>&1 \
		|| { tail -30 $(VENV)/pip.log; exit 1; }
	$(PY) -m pip install --disable-pip-version-check -e . --no-deps >> $(VENV)/pip.log 2>&1 \
		|| { tail -30 $(VENV)/pip.log; exit 1; }
	touch $(STAMP)

## browser: Debian's Chromium for the Playwright tests (Playwright cannot download its own here)
browser:
	@command -v chromium >/dev/null || scripts/install-chromium.sh

## rsyslog: Debian's rsyslog for the omfwd test and bench-syslog's ompgsql reference
rsyslog:
	@scripts/install-rsyslog.sh

## lint: ruff, and the import-linter contracts of pyproject.toml (the layers of docs/architecture.md)
lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

## bench: end-to-end benchmark against a system started by `make run`
bench: $(STAMP)
	$(PY) -m bench.e2e

bench-parsers: $(STAMP)
	$(PY) -m bench.parsers

bench-query: $(STAMP)
	$(PY) -m bench.query

bench-live: $(STAMP)
	$(PY) -m bench.live

bench-syslog: $(STAMP) rsyslog
	$(PY) -m bench.syslog

## bench-ingest: single-log POST /data/fast with wrk, Sluice against Flask + one XADD (issue 11)
bench-ingest: $(STAMP) wrk
	$(PY) -m bench.ingest

## bench-growth: ingest rows/s and query p95s at 1M, 10M, 30M stored rows; docs/perf/growth.png
bench-growth: $(STAMP)
	$(PY) -m bench.growth

## flamegraphs: py-spy flame graphs of this checkout under load, into docs/perf/ (docs/perf/README.md):
## a POST /data/fast worker (100-log batches, then one log per request), the drain on a 15,000-log
## backlog, the web worker of 500 live watchers
flamegraphs: $(STAMP)
	$(PY) -m bench.ingest_profile docs/perf/ingest-after.svg
	$(PY) -m bench.ingest_profile docs/perf/ingest-single-after.svg --batch 1
	$(VENV)/bin/py-spy record --idle --rate 100 --output docs/perf/drain-after.svg \
		-- $(PY) -m bench.writepath --drain 15000
	$(PY) -m bench.live --seconds 15 --flamegraph docs/perf/live-after.svg

## wrk: Debian's wrk, the load generator of bench-ingest
wrk:
	@scripts/install-wrk.sh

## schemathesis: fuzz every endpoint of /openapi.json against a throwaway stack
schemathesis: $(STAMP)
	$(PY) -m pytest tests/test_openapi_fuzz.py -p no:cacheprovider

## hostile: 10,000 hostile requests against a keyed Sluice (in-process and gunicorn); `make test` runs 2,000
hostile: $(STAMP)
	HOSTILE_EXAMPLES=$${HOSTILE_EXAMPLES:-10000} $(PY) -m scripts.devstack test tests/test_hostile.py -k hostile_requests -p no:cacheprovider -rA

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis .ruff_cache
