# The two commands: `make run` brings the system up, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

N ?= 200
KILLS ?= 5
RESTARTS ?= 1

.PHONY: install run test lint typecheck pytest chaos bench bench-quick bench-scale mutation clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m console.vendor
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "Starting the system. In a second terminal: . .venv/bin/activate && refunds demo"
	$(BIN)/refunds up --seed-demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

BENCH_N ?= 1000
BENCH_M ?= 2000

bench: $(STAMP)
	$(BIN)/python -m bench.run --refunds $(BENCH_N) --parked $(BENCH_M)

BENCH_PARKED ?= 10000

bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --parked $(BENCH_PARKED)

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

mutation: $(STAMP)
	$(BIN)/python -m mutation.run

chaos: $(STAMP)
	$(BIN)/python -m chaos.run --refunds $(N) --kills $(KILLS) --server-restarts $(RESTARTS)

clean:
	rm -rf $(VENV) var build *.egg-info .mypy_cache .ruff_cache .pytest_cache .mutmut-cache
