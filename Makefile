# Lectern: `make run` runs everything on this machine; `make test` runs every test.
.PHONY: run test unit lint bench asyncapi k8s-check dashboards infra install migrate web chaos

install:
	@scripts/bootstrap.sh

infra:
	@scripts/ensure-infra.sh

# the web app (npm), built when its sources changed
web:
	@scripts/build-web.sh

run:
	@scripts/run.sh

migrate: install infra
	.venv/bin/python -m shared.migrate

# unit + contract + integration + end-to-end (services and browser), against the real
# RabbitMQ and PostgreSQL; the web app's component tests (vitest) first
test: install infra web
	cd services/gateway/webapp && npm test --silent
	LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m pytest

unit: install
	LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m pytest tests/unit tests/contract

# a bigger chaos run than the one in `make test` (docs/CHAOS.md): its own RabbitMQ and
# PostgreSQL; CHAOS_COURSES (30), CHAOS_SECONDS (120), CHAOS_SEED; prints the counts
chaos: install infra
	LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m tests.chaos.run

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench: install infra
	@for b in bench/*.py; do echo "== $$b"; LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python $$b || exit 1; done

asyncapi: install
	LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m shared.asyncapi > docs/asyncapi.json

k8s-check: install
	.venv/bin/python scripts/check_manifests.py

dashboards: install
	.venv/bin/python scripts/build_dashboards.py
