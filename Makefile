# agentbus — every target sets itself up on a fresh machine (Python venv from uv.lock, CDK CLI from package-lock.json).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# STAGE=dev deploys a second copy: stack dev-AgentbusStack, bus and schedule group dev-agentbus.
STAGE ?=
STACK ?= $(if $(STAGE),$(STAGE)-)AgentbusStack
CONTEXT := $(if $(STAGE),-c stage=$(STAGE))
# MiniStack (local AWS emulator) for `make rehearse`: its own virtualenv, since it pins a botocore that
# conflicts with the project's; exact versions and hashes in the requirements file (uv pip compile).
MINISTACK_VENV := $(TOOLS)/ministack
MINISTACK := $(MINISTACK_VENV)/bin/ministack
MINISTACK_REQUIREMENTS := tests/rehearse/ministack-requirements.txt

# jsii (the CDK's Python runtime) warns on every synth about a Node.js it deems old: DEPRECATED for one nearing its
# end of life, END_OF_LIFE for one past it (Node 20 for the pinned jsii; a comma-separated list of major versions).
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# The pinned CDK CLI's AWS SDK warns, on every synth and deploy under Node 20, that its releases after January
# 2027 will need Node 22: not this pinned one (README: 22 or later recommended).
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED := true
export UV_PYTHON_DOWNLOADS := never
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: help setup demo test test-lambda rehearse up synth bootstrap deploy destroy lint typecheck bench bench-quick soak catalogue clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The stamp holds the checkout the venv was made for: a venv copied or moved with its checkout still runs the old
# checkout's code (its editable install and its scripts name that path), so it is made again here.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	@if [ -s $@ ] && [ "$$(cat $@)" != "$(CURDIR)" ]; then \
	  echo "$(VENV) was made for $$(cat $@), not $(CURDIR): making it again"; rm -rf $(VENV); fi
	$(UV) sync --frozen --python $(PYTHON)
	@echo "$(CURDIR)" > $@
ifneq ($(shell cat $(VENV)/.synced 2>/dev/null),$(CURDIR))
.PHONY: $(VENV)/.synced
endif

# The stack's name comes from STAGE: a stage given in ARGS (-c stage=dev) would synthesize and deploy another stack
# than the one these targets name.
ifneq ($(filter stage=%,$(ARGS)),)
$(error give the stage as STAGE=$(patsubst stage=%,%,$(firstword $(filter stage=%,$(ARGS)))) (e.g. make deploy STAGE=dev), not in ARGS: the targets name the stack from STAGE)
endif

# The Lambda code's tests run again on Lambda's Python (infrastructure/consumer.py: PYTHON_3_13), in a virtualenv of
# their own with the project's runtime dependencies and the `lambda-test` group from uv.lock. The interpreter:
# LAMBDA_PYTHON if given, else one uv finds, else pyenv's newest 3.13, else one uv downloads.
LAMBDA_PYTHON_VERSION := 3.13
LAMBDA_VENV := .venv-lambda
LAMBDA_PYTHON ?=
$(LAMBDA_VENV)/.synced: $(UV) pyproject.toml uv.lock
	@if [ -s $@ ] && [ "$$(cat $@)" != "$(CURDIR)" ]; then rm -rf $(LAMBDA_VENV); fi; \
	py="$(LAMBDA_PYTHON)"; \
	if [ -z "$$py" ]; then py=$$($(UV) python find --no-project $(LAMBDA_PYTHON_VERSION) 2>/dev/null); fi; \
	if [ -z "$$py" ] && command -v pyenv > /dev/null; then \
	  py=$$(ls -d "$$(pyenv root)"/versions/$(LAMBDA_PYTHON_VERSION).*/bin/python$(LAMBDA_PYTHON_VERSION) 2>/dev/null | sort -V | tail -1); fi; \
	if [ -z "$$py" ]; then echo "no Python $(LAMBDA_PYTHON_VERSION) here: uv downloads one"; \
	  py=$$(UV_PYTHON_DOWNLOADS=automatic $(UV) python find --no-project $(LAMBDA_PYTHON_VERSION) 2>/dev/null || \
	        { UV_PYTHON_DOWNLOADS=automatic $(UV) python install $(LAMBDA_PYTHON_VERSION) >&2 && \
	          $(UV) python find --no-project $(LAMBDA_PYTHON_VERSION); }); fi; \
	if [ -z "$$py" ]; then echo "make: no Python $(LAMBDA_PYTHON_VERSION) (Lambda's runtime) found, and uv could not download one:" \
	  "install it (uv python install $(LAMBDA_PYTHON_VERSION), or pyenv install $(LAMBDA_PYTHON_VERSION)) or name it: make test LAMBDA_PYTHON=/path/to/python$(LAMBDA_PYTHON_VERSION)"; exit 1; fi; \
	UV_PROJECT_ENVIRONMENT=$(LAMBDA_VENV) $(UV) sync --quiet --frozen --python "$$py" --no-default-groups --group lambda-test
	@echo "$(CURDIR)" > $@
ifneq ($(shell cat $(LAMBDA_VENV)/.synced 2>/dev/null),$(CURDIR))
.PHONY: $(LAMBDA_VENV)/.synced
endif

$(MINISTACK): $(UV) $(MINISTACK_REQUIREMENTS)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(MINISTACK_VENV)
	$(UV) pip install --quiet --python $(MINISTACK_VENV)/bin/python --require-hashes -r $(MINISTACK_REQUIREMENTS)
	@touch $@

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.synced $(LAMBDA_VENV)/.synced $(CDK) ## install the pinned Python dependencies (the venv, and Lambda's Python 3.13 for its tests) and CDK CLI

demo: $(VENV)/.synced ## run the main job locally: every workflow's samples through the whole topology on moto
	$(VENV)/bin/agentbus demo $(ARGS)

# Test processes (pytest-xdist, a module per process), one per core: moto and the CDK synths are CPU-bound, so
# on 2 cores 2 processes took 12 min where 3 took 15.5 and 1 about 16. TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2
# mypy runs beside pytest (most tests wait on queues and deadlines, so a core is free); either failing fails.
# The tests of the Lambda code on moto (its handlers and its faults) run on Lambda's
# Python (LAMBDA_VENV), the others on the venv's; ARGS (pytest options: -q, -k EXPR, -x...) go to both runs. ARGS
# that name tests (a path under tests/) run just those, on the venv's Python; `make test-lambda ARGS=...` runs them
# on Lambda's.
LAMBDA_TESTS := tests/functions tests/faults
TEST_PATHS := $(filter tests% ./tests%,$(ARGS))
test: $(VENV)/.synced $(LAMBDA_VENV)/.synced $(CDK) ## mypy (strict) and every test (unit, functions, integration, infrastructure, e2e) but the rehearsal; the Lambda code's on Python 3.13
	@mkdir -p out; $(VENV)/bin/mypy $(TYPED) > out/mypy.log 2>&1 & mypy=$$!; \
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS) $(if $(TEST_PATHS),,$(LAMBDA_TESTS:%=--ignore=%)); \
	tests=$$?; \
	if [ -z "$(TEST_PATHS)" ]; then echo "The Lambda code's tests ($(LAMBDA_TESTS)) on Lambda's Python:"; \
	  $(LAMBDA_VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS) $(LAMBDA_TESTS); lambda=$$?; \
	  if [ $$tests -eq 5 ] && [ $$lambda -ne 5 ]; then tests=0; fi; \
	  if [ $$lambda -eq 5 ] && [ $$tests -ne 5 ]; then lambda=0; fi; \
	  tests=$$(( tests != 0 ? tests : lambda )); fi; \
	wait $$mypy; types=$$?; echo "mypy (strict) on $(TYPED):"; cat out/mypy.log; \
	if [ $$types -ne 0 ]; then echo "make test: mypy found type errors (above)"; fi; \
	exit $$(( tests != 0 ? tests : types ))

test-lambda: $(LAMBDA_VENV)/.synced ## the Lambda code's tests (or those ARGS names) on Lambda's Python 3.13 (LAMBDA_PYTHON=... to choose it)
	$(LAMBDA_VENV)/bin/python --version
	$(LAMBDA_VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS) $(if $(TEST_PATHS),,$(LAMBDA_TESTS))

rehearse: $(VENV)/.synced $(CDK) $(MINISTACK) ## deploy the real app on MiniStack (cdk bootstrap + deploy) and test it end to end
	$(VENV)/bin/pytest tests/rehearse -m rehearse $(ARGS)

up: $(VENV)/.synced ## local AWS endpoint with the whole topology on http://127.0.0.1:4566
	$(VENV)/bin/agentbus up $(ARGS)

synth: $(VENV)/.synced $(CDK) ## synthesize the CloudFormation template into cdk.out/
	$(CDK) synth --quiet $(CONTEXT) $(ARGS)
	@out=cdk.out; set -- $(ARGS); while [ $$# -gt 0 ]; do case "$$1" in -o|--output) out=$$2;; esac; shift; done; \
	echo "template: $$out/$(STACK).template.json"

bootstrap: $(VENV)/.synced $(CDK) ## cdk bootstrap the account and region of your AWS credentials (once per account/region)
	$(CDK) bootstrap $(CONTEXT) $(ARGS)

deploy: $(VENV)/.synced $(CDK) ## cdk deploy to the account and region of your AWS credentials (asks to approve IAM changes)
	$(CDK) deploy $(STACK) $(CONTEXT) $(ARGS)

destroy: $(VENV)/.synced $(CDK) ## cdk destroy (the tables the manifest retains: each workflow's projection table unless retain=False; their KMS key and the claim-check bucket are retained too)
	$(CDK) destroy $(STACK) $(CONTEXT) $(ARGS)

lint: $(VENV)/.synced ## ruff on the code; cfn-lint runs on the synthesized template in the tests
	$(VENV)/bin/ruff check .

# mypy (strict, see [tool.mypy] in pyproject.toml) on the whole code: the Lambda code, the CDK app, the CLI.
TYPED := functions infrastructure app.py agentbus
typecheck: $(VENV)/.synced ## mypy (strict, see [tool.mypy] in pyproject.toml) on functions/, infrastructure/, agentbus/
	$(VENV)/bin/mypy $(TYPED)

bench: $(VENV)/.synced ## full benchmark of each coordinated workflow: 1, 10, 100, 1000 concurrent requests, parallel vs chained, cost per million; then the sweep: 3, 10, 30 agents x 1 KB, 100 KB, 1 MB results
	$(VENV)/bin/agentbus bench --agents 3,10,30 --payload 1KB,100KB,1MB $(ARGS)

bench-quick: $(VENV)/.synced ## benchmark of each coordinated workflow at 1, 10, 50 requests, then a sweep of 3, 6, 10 agents x 1 KB, 100 KB (a few minutes)
	$(VENV)/bin/agentbus bench --quick --agents 3,6,10 --payload 1KB,100KB $(ARGS)

soak: $(VENV)/.synced ## 1,000 requests of all workflows (with conflicting versions, unstorable values) at chaos 0.2; prints the invariants
	$(VENV)/bin/agentbus soak $(ARGS)

catalogue: $(VENV)/.synced ## regenerate docs/events.md from the manifest
	$(VENV)/bin/agentbus catalogue > docs/events.md

clean: ## remove generated files (keeps the virtualenv)
	rm -rf cdk.out .pytest_cache .hypothesis
