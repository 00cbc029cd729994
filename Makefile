# opsuite — everything a fresh machine needs is installed by these targets.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# checkov lives in its own virtualenv: it ships a fork of hcl2 (bc-python-hcl2) that
# replaces the hcl2 module python-hcl2 gives .venv (tests/terraform parse with the latter).
CKV_VENV  := .venv-checkov
CKV_STAMP := $(CKV_VENV)/.installed
# demo and serve default to the example; `make package` (a deployment) refuses the default.
CONFIG  ?= config/opsuite.example.yaml
BUILD   ?= build
TFVARS  ?=
TERRAFORM ?= terraform
FN      ?= health_check
PORT    ?= 8080
FUNCTIONS := backup_export health_check sla_evaluator alert_router

.PHONY: install test lint typecheck pytest checkov demo bench serve package require-config \
	clean tf-fmt tf-validate tf-plan report report-screenshot

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

# The browser tests (tests/browser.py) drive Debian's chromium through Playwright; `playwright
# install` is never run (its download is unreachable here). Installed with apt-get when missing,
# which needs root; elsewhere this says what to do and fails (.ci/run then warns and goes on).
CHROMIUM_BIN := /usr/lib/chromium/chromium

.PHONY: browser
browser:
	@if [ -x $(CHROMIUM_BIN) ] || command -v chromium >/dev/null 2>&1; then \
	  bin=$(CHROMIUM_BIN); [ -x "$$bin" ] || bin=$$(command -v chromium); \
	  echo "chromium: $$bin ($$("$$bin" --version 2>/dev/null | head -n1))"; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: chromium is not installed ($(CHROMIUM_BIN) missing, none on PATH) and" \
	    "can't be installed here: that needs root and apt-get. Install Debian's chromium package" \
	    "(sudo apt-get install --no-install-recommends chromium); until then the browser tests skip" >&2; \
	  exit 2; \
	else \
	  echo "chromium is missing: installing it with apt-get (about 15 s, 25 packages)"; \
	  start=$$(date +%s); \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      --no-install-recommends chromium; } || { echo "make browser: apt-get could not install chromium" >&2; exit 1; }; \
	  [ -x $(CHROMIUM_BIN) ] || { echo "make browser: apt-get ran but $(CHROMIUM_BIN) is still missing" >&2; exit 1; }; \
	  echo "chromium: $(CHROMIUM_BIN) ($$($(CHROMIUM_BIN) --version 2>/dev/null | head -n1)), installed in $$(( $$(date +%s) - start )) s"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest -q

test: lint typecheck pytest checkov

$(CKV_STAMP): requirements-checkov.lock
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	rm -rf $(CKV_VENV)
	$(PY) -m venv $(CKV_VENV)
	$(CKV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.lock
	@touch $(CKV_STAMP)

# Offline (--skip-download: no platform calls). A failed check fails the build; a deliberate
# exception is an inline `# checkov:skip=ID:reason` inside the resource, next to why.
# checkov exits 0 on a file its HCL parser can't read (it is then not checked at all): its
# JSON summary counts those, and any is a failure, naming the file and position.
define CHECKOV_PARSED
import json, pathlib, sys
report = json.loads(pathlib.Path(sys.argv[1]).read_text() or "[]")
reports = report if isinstance(report, list) else [report]
errors = sum(r.get("summary", {}).get("parsing_errors", 0) for r in reports)
if errors:
    import hcl2  # checkov's own fork, the parser that failed
    for path in sorted(pathlib.Path("terraform").rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        try:
            hcl2.loads(path.read_text())
        except Exception as exc:
            where = f"{path}:{getattr(exc, 'line', '?')}:{getattr(exc, 'column', '?')}"
            first = (str(exc).splitlines() or [""])[0]
            print(f"checkov: {where}: not parsed, so not checked: {first}", file=sys.stderr)
    sys.exit(f"checkov: {errors} file(s) could not be parsed, so were not checked")
endef
export CHECKOV_PARSED

checkov: $(CKV_STAMP)
	@rm -f $(CKV_VENV)/report.json
	$(CKV_VENV)/bin/checkov -d terraform --framework terraform --skip-download --quiet --compact \
	  -o cli -o json --output-file-path console,$(CKV_VENV)/report.json
	@$(CKV_VENV)/bin/python -c "$$CHECKOV_PARSED" $(CKV_VENV)/report.json

demo: install
	$(BIN)/opsuite --config $(CONFIG) demo

bench: install
	$(BIN)/python bench/run.py --output BENCHMARKS.md

# exec: the server replaces the recipe's shell, so a SIGTERM that make passes on to its
# child (or Ctrl-C) reaches the server itself instead of leaving it running on $(PORT).
serve: install
	OPSUITE_CONFIG=$(CONFIG) exec $(BIN)/functions-framework --target $(FN) --source functions/$(FN)/main.py --host 127.0.0.1 --port $(PORT)

# A deployment packages the operator's config, named on purpose: the example is only the
# default of demo/serve, and packaging it by accident would deploy the demo's settings.
CONFIG_GIVEN := $(filter command line environment environment override override,$(origin CONFIG))

require-config:
	@if [ -z "$(CONFIG_GIVEN)" ] || [ -z "$(CONFIG)" ]; then \
	  echo "make package: name the config to deploy, e.g. make package CONFIG=config/opsuite.yaml" \
	    "(the example config is only the default of demo and serve, never packaged by default)" >&2; \
	  exit 2; \
	fi

# The suite's own loader validates the config (one line naming the path and what is wrong).
define VALIDATE_CONFIG
import sys
from shared.config import deployment_problems, load_settings
from shared.errors import ConfigError
try:
    problems = deployment_problems(load_settings(sys.argv[1]))
except ConfigError as exc:
    sys.exit(f"make package: {exc}\nmake package: nothing packaged")
if problems:
    lines = "".join(f"make package: {sys.argv[1]}: {p}\n" for p in problems)
    sys.exit(f"{lines}make package: nothing packaged")
endef
export VALIDATE_CONFIG

define SHA256_OF
import hashlib, sys
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest() + "  opsuite.yaml")
endef
export SHA256_OF

# Cloud Functions builds only the uploaded directory: copy shared/ and the config in.
# $(BUILD)/opsuite.yaml is the copy Terraform reads (-var config_file=...), its digest beside it.
package: require-config install
	@$(BIN)/python -c "$$VALIDATE_CONFIG" '$(CONFIG)'
	@mkdir -p $(BUILD)
	@for fn in $(FUNCTIONS); do \
	  rm -rf $(BUILD)/$$fn && mkdir -p $(BUILD)/$$fn && \
	  cp functions/$$fn/main.py functions/$$fn/requirements.txt $(BUILD)/$$fn/ && \
	  cp -r shared $(BUILD)/$$fn/shared && \
	  rm -rf $(BUILD)/$$fn/shared/report_assets && \
	  find $(BUILD)/$$fn -name __pycache__ -prune -exec rm -rf {} + && \
	  cp '$(CONFIG)' $(BUILD)/$$fn/opsuite.yaml && echo "packaged $(BUILD)/$$fn" || exit 1; \
	done
	@cp '$(CONFIG)' $(BUILD)/opsuite.yaml
	@$(BIN)/python -c "$$SHA256_OF" $(BUILD)/opsuite.yaml > $(BUILD)/config.sha256
	@echo "config $(CONFIG) -> $(BUILD)/opsuite.yaml (sha256 $$(cut -d' ' -f1 $(BUILD)/config.sha256))"

tf-fmt:
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; \
	else echo "terraform not installed: skipping fmt check"; fi

# tf-validate and tf-plan need the google provider from the Terraform registry: run them
# where it is reachable (CI here checks fmt, the HCL invariants and checkov offline).
define NEED_TERRAFORM
if ! command -v $(TERRAFORM) >/dev/null 2>&1; then \
  echo "make $@: terraform is not installed (needs Terraform >= 1.7 on PATH, or TERRAFORM=/path/to/terraform, and access to the Terraform registry)" >&2; \
  exit 2; \
fi
endef

tf-validate:
	@$(NEED_TERRAFORM)
	$(TERRAFORM) -chdir=terraform init -backend=false -input=false
	$(TERRAFORM) -chdir=terraform validate

# A plan of the packaged build: make package CONFIG=... first, then make tf-plan TFVARS=...
tf-plan:
	@$(NEED_TERRAFORM)
	@if [ -z "$(TFVARS)" ]; then \
	  echo "make tf-plan: name the variables file, e.g. make tf-plan TFVARS=terraform/terraform.tfvars" >&2; exit 2; fi
	@if [ ! -f "$(TFVARS)" ]; then echo "make tf-plan: $(TFVARS) not found" >&2; exit 2; fi
	@if [ ! -f "$(BUILD)/opsuite.yaml" ]; then \
	  echo "make tf-plan: $(BUILD)/opsuite.yaml is missing: run make package CONFIG=... first" >&2; exit 2; fi
	$(TERRAFORM) -chdir=terraform init -backend=false -input=false
	$(TERRAFORM) -chdir=terraform plan -input=false -var-file=$(abspath $(TFVARS)) \
	  -var config_file=$(abspath $(BUILD)/opsuite.yaml) \
	  $(if $(filter-out build,$(BUILD)),-var function_source_dir=$(abspath $(BUILD)))

clean:
	rm -rf $(VENV) $(CKV_VENV) build .local .pytest_cache .mypy_cache .ruff_cache

# The ops report over the local stack (`make demo` first for data), or CONFIG=... BACKEND=gcp
report: install
	$(BIN)/opsuite --config $(CONFIG) $(if $(BACKEND),--backend $(BACKEND)) report --output .local/report.html

# docs/report.png, the README's screenshot: the demo's report in headless Chromium
report-screenshot: demo browser
	$(BIN)/python -m tools.report_screenshot .local/report.html docs/report.png
