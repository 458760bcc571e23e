"""Settings shared by every service, read from the environment.

Variables use the ``LECTERN_`` prefix (``LECTERN_AMQP_URL``) or the
conventional bare names (``AMQP_URL``, ``DATABASE_URL``, ``LLM_MODEL``,
``LLM_API_BASE``, ``OTEL_EXPORTER_OTLP_ENDPOINT``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "lectern-development-secret-change-me"
OFFLINE_MODEL = "offline/lectern"


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"LECTERN_{name}", name)


class LecternSettings(BaseSettings):
    """Base settings every service reads; services subclass it for their own."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias=_env("ENVIRONMENT")
    )
    service_name: str = Field("lectern", validation_alias=_env("SERVICE_NAME"))
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias=_env("AMQP_URL"))
    database_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/lectern",
        validation_alias=_env("DATABASE_URL"),
    )
    db_pool_size: int = Field(10, validation_alias=_env("DB_POOL_SIZE"))
    prefetch: int = Field(
        32, validation_alias=_env("PREFETCH"), description="unacked messages per consumer"
    )
    max_attempts: int = Field(
        4, validation_alias=_env("MAX_ATTEMPTS"), description="deliveries before dead-lettering"
    )
    retry_base_delay_ms: int = Field(500, validation_alias=_env("RETRY_BASE_DELAY_MS"))
    http_host: str = Field("127.0.0.1", validation_alias=_env("HTTP_HOST"))
    http_port: int = Field(0, validation_alias=_env("HTTP_PORT"))
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("LECTERN_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    # LLM
    llm_model: str = Field(OFFLINE_MODEL, validation_alias=_env("LLM_MODEL"))
    llm_fallback_models: list[str] = Field(
        default_factory=list, validation_alias=_env("LLM_FALLBACK_MODELS")
    )
    llm_api_base: str | None = Field(None, validation_alias=_env("LLM_API_BASE"))
    llm_api_key: str | None = Field(None, validation_alias=_env("LLM_API_KEY"))
    llm_timeout_s: float = Field(120.0, validation_alias=_env("LLM_TIMEOUT_S"))
    llm_max_retries: int = Field(3, validation_alias=_env("LLM_MAX_RETRIES"))
    offline_latency_ms: int = Field(
        0,
        validation_alias=_env("OFFLINE_LATENCY_MS"),
        description="simulated latency of the built-in offline model, per call",
    )
    jwt_secret: str = Field(DEV_JWT_SECRET, validation_alias=_env("JWT_SECRET"))
    admin_emails: list[str] = Field(
        default_factory=list,
        validation_alias=_env("ADMIN_EMAILS"),
        description="accounts registered with these emails get the admin role (JSON list)",
    )
    # token budgets per calendar month (UTC); 0 = unlimited
    budget_guest_tokens: int = Field(
        300_000, ge=0, validation_alias=_env("BUDGET_GUEST_TOKENS"), description="per guest"
    )
    budget_user_tokens: int = Field(
        3_000_000,
        ge=0,
        validation_alias=_env("BUDGET_USER_TOKENS"),
        description="per registered user of the default tenant",
    )
    budget_tenant_tokens: int = Field(
        30_000_000,
        ge=0,
        validation_alias=_env("BUDGET_TENANT_TOKENS"),
        description="per named tenant (shared by its users and internal systems)",
    )
    # prompts
    prompt_label: str = Field(
        "production",
        validation_alias=_env("PROMPT_LABEL"),
        description="which label of each prompt this deployment uses (e.g. staging)",
    )
    prompt_timeout_s: float = Field(
        2.0,
        validation_alias=_env("PROMPT_TIMEOUT_S"),
        description="how long to wait for the registry before using the shipped prompt",
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> LecternSettings:
        if self.environment == "production" and (
            self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32
        ):
            raise ValueError("LECTERN_JWT_SECRET must be set (32+ characters) in production")
        return self

    @property
    def db_schema(self) -> str:
        """The PostgreSQL schema this service owns (its name)."""
        return self.service_name


@lru_cache
def get_settings(service_name: str = "lectern") -> LecternSettings:
    """Settings for one service, read once from the environment."""
    return LecternSettings(service_name=service_name)
