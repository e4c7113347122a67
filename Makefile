# Every target builds .venv from nothing when it is missing: a fresh clone needs only Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test check lint typecheck layers bench bench-full clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/consortia demo

test: $(STAMP)
	scripts/ensure-postgres
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck layers test

# Figures, not pass/fail: the sandbox's cost per call against a builtin action in the same
# run, then receipt generation and verification at 10^3 and 10^6 ledger entries, then the
# same group-commit workload with the analytics sink off and on, the misuse detector's false
# alarms and detection delays on simulated traffic, then signed actions over
# HTTPS against a real server (bench/http_load.py, figures also in bench/results/), then
# cluster vs embedded: the builtin and Telco actions with the ledger in SQLite and in a
# throwaway PostgreSQL as a cluster node, the takeover after 50 SIGKILLs of the sequencer and
# the PostgreSQL failover time (bench/cluster.py; needs Debian's postgresql package), and
# last the targets.
bench: $(BENCH_STAMP)
	scripts/ensure-postgres
	$(BIN)/python -m consortia.sandbox._bench --calls 2000
	$(BIN)/python bench/receipts.py
	$(BIN)/python bench/analytics_sink.py
	$(BIN)/python bench/detector_eval.py --seeds 3 --normal-days 2
	$(BIN)/python bench/http_load.py
	$(BIN)/python bench/http_floor.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/targets.py

# The long HTTP run: 30 s scenarios, 10^6 objects in state, a 10-minute RSS soak (~25 min).
bench-full: $(BENCH_STAMP)
	$(BIN)/python bench/http_load.py --full --soak 600 --json bench/results/http_load_full.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build src/*.egg-info
