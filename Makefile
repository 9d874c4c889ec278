# The front door. `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LS_VENV := .localstack
LOCALSTACK_PKGS := 'localstack-core[runtime]==4.13.1' 'cbor2<6' 'pyopenssl<25' 'cryptography<45' service_identity

.PHONY: install run test lint schema faults mutate bench clean

install: $(BIN)/.installed $(LS_VENV)/.installed

$(BIN)/.installed: pyproject.toml devstack/pyproject.toml
	@echo "==> installing the fleet and its dev stack into $(VENV) (about a minute, once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./devstack
	touch $@

# LocalStack pins its own botocore, so it lives in a venv of its own (shared/notes/local-sqs.md).
$(LS_VENV)/.installed:
	@echo "==> installing LocalStack into $(LS_VENV) (a minute or two, once)"
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --upgrade pip
	$(LS_VENV)/bin/pip install --quiet $(LOCALSTACK_PKGS)
	touch $@

run: install
	@echo "==> fleet demo: starting the local stack, running the sample job"
	$(BIN)/fleet demo

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check worker handlers devstack tests
	$(BIN)/mypy worker handlers devstack
	$(BIN)/hadolint Dockerfile
	$(BIN)/cfn-lint infra/cloudformation/*.yaml

# The fault suite at full size (make test runs it reduced): 200 workflows a scenario,
# 30 s outages; the audit table (every column counted: deliveries at the fake gateway,
# ledger rows, DLQ) is printed and written to bench/faults.json with the secret scan.
faults: install
	mkdir -p bench
	FLEET_FAULT_SIZE=200 FLEET_FAULT_OUTAGE=30 FLEET_FAULT_REPORT=bench/faults.json \
		$(BIN)/pytest tests/test_faults.py -s -p no:randomly -q

# Mutation testing of the pure core ([tool.mutmut] in pyproject.toml) with the fast unit
# tests only; prints the score per function (docs/testing.md has the last one).
mutate: install
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/mutmut results --all true | $(BIN)/python -m devstack.mutation_score

bench: install
	$(BIN)/fleet bench --out bench/report.json --chart bench/report.png --docs docs/performance.md

schema: $(BIN)/.installed
	$(BIN)/fleet schema --out docs/contract.schema.json

clean:
	rm -rf $(VENV) $(LS_VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info mutants
