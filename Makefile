# The two commands a newcomer needs: `make demo` and `make test`. Each creates (or reuses) the
# local virtual environment .venv and installs the project into it; nothing else is needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench check-defs ui celery clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Start the demo administrations and the catalog, materialize every dataset, print a summary.
demo: $(STAMP)
	$(BIN)/python -m dinum_pipelines.demo

## The whole test suite (unit, catalog contract, end to end, `dg check defs`).
test: $(STAMP)
	$(BIN)/python -m pytest

## Benchmarks: each prints its figures against a reference measured in the same run.
bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

## Each dataset's defs.yaml against the component's schema, one folder a call (dg 1.13.27 checks one
## file per component type a call), then the code location's load with every registry rule.
check-defs: $(STAMP)
	@set -e; for folder in dinum_pipelines/defs/datasets/*/; do $(BIN)/dg check yaml $$folder; done
	$(BIN)/dg check defs

## The Dagster UI on the demo's instance (run `make demo` first, in another terminal).
ui: $(STAMP)
	DAGSTER_HOME=$(CURDIR)/.dinum/dagster_home $(BIN)/dagster dev -w workspace.yaml

## The deployment on several machines, on this one: S3 (moto), Dagster on PostgreSQL, three Celery workers.
celery: $(STAMP)
	$(BIN)/python -m dinum_pipelines.deploy.celery_cluster up

clean:
	rm -rf .dinum
