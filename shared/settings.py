"""Settings shared by every service, read from the environment.

Variables use the ``LECTERN_`` prefix (``LECTERN_AMQP_URL``) or the
conventional bare names (``AMQP_URL``, ``DATABASE_URL``, ``LLM_MODEL``,
``LLM_API_BASE``, ``OTEL_EXPORTER_OTLP_ENDPOINT``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "lectern-development-secret-change-me"
OFFLINE_MODEL = "offline/lectern"


_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

# Messages a consumer holds at once, per service, unless LECTERN_PREFETCH says otherwise.
# A content or assessment handler spends nearly all its time waiting on the LLM (seconds
# per call, next to milliseconds of CPU), so one process holds as many as it has calls in
# flight, not as many as it has cores; the others stay at the former default.
SERVICE_PREFETCH = {"content": 1000, "assessment": 1000}
DEFAULT_PREFETCH = 32


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"LECTERN_{name}", name)


def parse_rate(text: str) -> tuple[int, int]:
    """A rate limit ``"<count>/<period>"`` as (count, window seconds); count 0 is no limit.

    The period is ``second``, ``minute``, ``hour`` or ``day``, optionally with a number
    before it (``"5/10minute"``: five per ten minutes).
    """
    count, _, period = text.replace(" ", "").partition("/")
    number = period.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = period[len(number) :].rstrip("s") or "?"
    if not count.isdigit() or unit not in _PERIODS or (number and not number.isdigit()):
        raise ValueError(
            f"rate limit {text!r}: write <count>/<period>, e.g. 30/minute or 100/hour "
            "(period: second, minute, hour or day)"
        )
    window = _PERIODS[unit] * (int(number) if number else 1)
    if window < 1:
        raise ValueError(f"rate limit {text!r}: the period must be at least one second")
    return int(count), window


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
        0,
        ge=0,
        validation_alias=_env("PREFETCH"),
        description="unacked messages per consumer (handled at once); 0: the service's "
        "default, sized to its in-flight LLM calls for content and assessment (1000), "
        "32 elsewhere",
    )
    max_attempts: int = Field(
        4, validation_alias=_env("MAX_ATTEMPTS"), description="deliveries before dead-lettering"
    )
    retry_base_delay_ms: int = Field(500, validation_alias=_env("RETRY_BASE_DELAY_MS"))
    max_message_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        validation_alias=_env("MAX_MESSAGE_BYTES"),
        description="a consumed message's body above this is dead-lettered unread",
    )
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
    llm_direct: bool = Field(
        True,
        validation_alias=AliasChoices("LECTERN_LLM_DIRECT"),
        description=(
            "call openai/* models over Lectern's own HTTP client and offline/* models "
            "in-process, "
            "without importing litellm (about 140 MB and 4 s); false sends every model "
            "through litellm"
        ),
    )
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
    # what the gateway accepts (bad input is refused with a 4xx naming the limit)
    max_body_bytes: int = Field(
        256 * 1024,
        ge=1024,
        validation_alias=_env("MAX_BODY_BYTES"),
        description="largest HTTP request body the gateway reads (413 above it)",
    )
    max_chat_messages: int = Field(
        50,
        ge=1,
        validation_alias=_env("MAX_CHAT_MESSAGES"),
        description="learner messages in one course's planning chat (409 after that)",
    )
    max_modules: int = Field(
        30,
        ge=1,
        le=30,  # the planner's CourseDraft schema allows no more
        validation_alias=_env("MAX_MODULES"),
        description="modules a finalised course may have (more fails the finalisation)",
    )
    # tokens
    token_ttl_hours: float = Field(
        30 * 24, gt=0, validation_alias=_env("TOKEN_TTL_HOURS"), description="an account's token"
    )
    guest_token_ttl_hours: float = Field(
        7 * 24, gt=0, validation_alias=_env("GUEST_TOKEN_TTL_HOURS"), description="a guest's token"
    )
    stream_token_ttl_s: int = Field(
        120,
        ge=5,
        validation_alias=_env("STREAM_TOKEN_TTL_S"),
        description="a job's stream token (opens that job's event stream once, for EventSource)",
    )
    # rate limits, "<count>/<period>" (second, minute, hour, day; "0/minute" = off), counted
    # per fixed window in the gateway's database, so they hold across gateway replicas
    rate_limit_generate_user: str = Field(
        "60/hour", validation_alias=_env("RATE_LIMIT_GENERATE_USER")
    )
    rate_limit_generate_ip: str = Field("600/hour", validation_alias=_env("RATE_LIMIT_GENERATE_IP"))
    rate_limit_grade_user: str = Field("30/minute", validation_alias=_env("RATE_LIMIT_GRADE_USER"))
    rate_limit_grade_ip: str = Field("300/minute", validation_alias=_env("RATE_LIMIT_GRADE_IP"))
    rate_limit_guest_ip: str = Field("100/hour", validation_alias=_env("RATE_LIMIT_GUEST_IP"))
    rate_limit_auth_ip: str = Field("60/minute", validation_alias=_env("RATE_LIMIT_AUTH_IP"))
    rate_limit_login_email: str = Field(
        "10/minute", validation_alias=_env("RATE_LIMIT_LOGIN_EMAIL")
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

    # course sources (content service: ingestion and retrieval; gateway: upload limits)
    embedding_model: str = Field(
        "local/all-MiniLM-L6-v2",
        validation_alias=_env("EMBEDDING_MODEL"),
        description="local/all-MiniLM-L6-v2 (packaged, offline) or any litellm embedding model",
    )
    model_cache_dir: str | None = Field(
        None,
        validation_alias=_env("MODEL_CACHE_DIR"),
        description="where the packaged model is extracted (default ~/.cache/lectern/models)",
    )
    source_max_bytes: int = Field(
        10_000_000, ge=1, validation_alias=_env("SOURCE_MAX_BYTES"), description="per file"
    )
    source_max_per_course: int = Field(
        20, ge=1, validation_alias=_env("SOURCE_MAX_PER_COURSE"), description="files per course"
    )

    @field_validator(
        "rate_limit_generate_user",
        "rate_limit_generate_ip",
        "rate_limit_grade_user",
        "rate_limit_grade_ip",
        "rate_limit_guest_ip",
        "rate_limit_auth_ip",
        "rate_limit_login_email",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate(value)
        return value

    @model_validator(mode="after")
    def _service_prefetch(self) -> LecternSettings:
        if self.prefetch == 0:
            self.prefetch = SERVICE_PREFETCH.get(self.service_name, DEFAULT_PREFETCH)
        return self

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
