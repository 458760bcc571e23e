from services.prompts.store import metadata
from shared.migration_env import run_migrations

run_migrations(metadata)
