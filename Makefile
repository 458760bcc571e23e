# Lectern: `make run` runs everything on this machine; `make test` runs every test.
.PHONY: run test unit lint bench asyncapi k8s-check infra install migrate

install:
	@scripts/bootstrap.sh

infra:
	@scripts/ensure-infra.sh

run:
	@scripts/run.sh

migrate: install infra
	.venv/bin/python -m shared.migrate

# unit + contract + integration + end-to-end, against the real RabbitMQ and PostgreSQL
test: install infra
	LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m pytest

unit: install
	LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m pytest tests/unit tests/contract

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench: install infra
	@for b in bench/*.py; do echo "== $$b"; LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python $$b || exit 1; done

asyncapi: install
	LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m shared.asyncapi > docs/asyncapi.json

k8s-check: install
	.venv/bin/python scripts/check_manifests.py
