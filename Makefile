# opsuite — everything a fresh machine needs is installed by these targets.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CONFIG  ?= config/opsuite.example.yaml
FN      ?= health_check
PORT    ?= 8080
FUNCTIONS := backup_export health_check sla_evaluator alert_router

.PHONY: install test lint typecheck pytest demo bench serve package clean tf-fmt tf-validate

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"' 
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	# the BigQuery emulator's DuckDB extensions, installed offline from their PyPI wheels
	$(BIN)/python -c "from duckdb_extensions import import_extension; import_extension('spatial'); import_extension('avro')"
	@touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

demo: install
	$(BIN)/opsuite --config $(CONFIG) demo

bench: install
	$(BIN)/python bench/run.py --output BENCHMARKS.md

# exec: the server replaces the recipe's shell, so a SIGTERM that make passes on to its
# child (or Ctrl-C) reaches the server itself instead of leaving it running on $(PORT).
serve: install
	OPSUITE_CONFIG=$(CONFIG) exec $(BIN)/functions-framework --target $(FN) --source functions/$(FN)/main.py --host 127.0.0.1 --port $(PORT)

# Cloud Functions builds only the uploaded directory: copy shared/ and the config in.
package:
	@for fn in $(FUNCTIONS); do \
	  rm -rf build/$$fn && mkdir -p build/$$fn && \
	  cp functions/$$fn/main.py functions/$$fn/requirements.txt build/$$fn/ && \
	  cp -r shared build/$$fn/shared && \
	  find build/$$fn -name __pycache__ -prune -exec rm -rf {} + && \
	  cp $(CONFIG) build/$$fn/opsuite.yaml && echo "packaged build/$$fn"; \
	done

tf-fmt:
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; \
	else echo "terraform not installed: skipping fmt check"; fi

# needs the google provider from the Terraform registry (not reachable from CI here)
tf-validate:
	cd terraform && terraform init -backend=false && terraform validate

clean:
	rm -rf $(VENV) build .local .pytest_cache .mypy_cache .ruff_cache
