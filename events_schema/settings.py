"""One settings object for the whole project, read from the environment.

Precedence (highest first): process environment, `.env` in the working directory, the
state file written by `scripts/run` for the servers it started (so a second terminal finds
them without copying URLs), then the defaults below, which fit a machine with PostgreSQL
and Redis on loopback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from events_schema.errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("EVENTS_STATE_DIR", PROJECT_ROOT / ".local"))
SERVICES_ENV_FILE = STATE_DIR / "services.env"
# First line of services.env once `services down` stopped the servers it names: commands then
# fail against those servers instead of falling back to the defaults (other servers).
SERVICES_STOPPED_MARK = "# stopped:"


class NudgeRule(BaseModel):
    """An inactivity rule: configuration, not code. A field it does not know is an error (a typo
    such as `threshold_hour` must not leave a rule running on a default)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    threshold_hours: float = Field(gt=0)
    # None: every non-reserved event type counts as activity.
    event_types: list[str] | None = None
    # Randomised holdout (docs/engine.md, "Holdout"): this share of the rule's users (by a hash of
    # salt, rule and user id) is never nudged; their due episodes are recorded as `nudge_withheld`.
    # 0: no holdout, every definition unchanged. A new salt re-draws the groups.
    holdout_percent: float = Field(0, ge=0, le=100)
    holdout_salt: str = ""
    # Shadow mode (docs/engine.md, "Shadow mode"): "shadow" decides on every beat as a live rule
    # would, and records each would-be nudge as a private `nudge_shadow` event instead of sending
    # it; its cool-down and episodes are its own records', so it never changes a live rule's users.
    mode: Literal["live", "shadow"] = "live"

    @model_validator(mode="after")
    def _a_shadow_rule_has_no_holdout(self) -> NudgeRule:
        if self.mode == "shadow" and self.holdout_percent:
            raise ValueError(
                f"holdout_percent: a shadow rule sends nothing, so it has no control arm (got {self.holdout_percent:g})"
            )
        return self

    @property
    def holdout_buckets(self) -> int:
        """Buckets (of public.engagement_holdout_bucket's 10,000) in the control arm."""
        return round(self.holdout_percent * 100)


class PushMessage(BaseModel):
    """A push notification's text for one rule: `{placeholders}` are the nudge's values (rule,
    threshold_hours, last_active_at), e.g. "{threshold_hours:g} hours"."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=1000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(SERVICES_ENV_FILE, ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # Connections
    # The owner's login: migrations, seed, audit, logins (Supabase's `postgres`).
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/engagement"
    # The engine's own login (worker, beat, `python -m worker scan|import|health`): a member of
    # service_role that owns nothing (role engagement_worker). Unset: DATABASE_URL, as on a
    # trust-auth development machine.
    worker_database_url: str | None = None
    # The passwords of those two logins, apart from their URLs: any character works, where in a
    # URL `@`, `/`, `#` must be percent-encoded (Compose's ${...} cannot). Set one and its URL has
    # none; unset: the URL's own password, if any.
    database_password: SecretStr | None = None
    worker_database_password: SecretStr | None = None
    # PostgREST's login password, set by `python -m events_schema logins`; unset: left alone.
    authenticator_password: str | None = None
    # HS256 secret of the API's JWTs (PostgREST's PGRST_JWT_SECRET, Supabase's JWT secret);
    # `python -m events_schema keys` mints the anon and service_role keys with it.
    jwt_secret: str | None = Field(None, min_length=32)
    # For what needs one server session throughout (migrations' lock and DDL, the feed's
    # LISTEN): a direct or session-mode URL; unset means DATABASE_URL. Never a transaction pooler.
    database_session_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Role the engine switches to for its reads and writes (Supabase's service role).
    db_service_role: str = "service_role"

    # Nudge engine
    nudge_rules: list[NudgeRule] = [NudgeRule(name="inactive_48h", threshold_hours=48)]
    scan_interval_seconds: float = Field(900, gt=0)
    reconcile_interval_hours: float = Field(24, gt=0)
    nudge_cooldown_hours: float = Field(24, ge=0)
    quiet_hours_enabled: bool = True
    quiet_hours_start: time = time(22, 0)
    quiet_hours_end: time = time(8, 0)
    scan_batch_size: int = Field(5000, gt=0)
    # At most this many nudges per scan (all its rules; each of N shards writes its share);
    # the rest are held for the next scan as `rate_limited`. 0: no limit (every due nudge
    # goes out in the first scan that may send it).
    nudge_max_per_scan: int = Field(0, ge=0)
    # A scan's lease on a rule lasts this long past its latest batch: a dead scan blocks none
    # longer (the next waits it out, then takes over); must exceed the slowest batch.
    scan_lease_seconds: float = Field(120, gt=0)
    # Shards each beat's scan is split into (by user id), each a task any worker runs, retried on
    # its own (worker/scan/shards.py); 1 scans in one task.
    scan_shards: int = Field(1, ge=1, le=65536)

    # Celery
    celery_queue: str = "engagement"
    task_soft_time_limit_seconds: int = Field(600, gt=0)
    task_time_limit_seconds: int = Field(660, gt=0)
    # A task that loses its database (OperationalError) retries with exponential backoff:
    # about base * 2**n seconds (jittered), at most the max, up to this many times.
    task_retry_backoff_seconds: int = Field(2, gt=0)
    task_retry_backoff_max_seconds: int = Field(300, gt=0)
    task_max_retries: int = Field(12, ge=0)
    # Redis re-delivers a task whose worker died (unacked) after this long; unset: an hour,
    # or twice the hard time limit if longer. Keep it above the longest task's run time.
    broker_visibility_timeout_seconds: int | None = Field(None, gt=0)

    # Push delivery (worker/delivery, docs/delivery.md). What a provider needs is checked when
    # it starts (worker.delivery.providers.make_provider), so a bad one stops delivery only.
    # none: nothing is sent (the app reads its nudges over Realtime); fcm: Firebase Cloud
    # Messaging HTTP v1; webhook: a signed POST per nudge to WEBHOOK_URL.
    delivery_provider: Literal["none", "fcm", "webhook"] = "none"
    # The service account's JSON key file (its token_uri is where the OAuth token comes from).
    fcm_credentials_file: Path | None = None
    # The send endpoint; {project_id} is the credentials file's (or FCM_PROJECT_ID).
    fcm_endpoint: str = "https://fcm.googleapis.com/v1/projects/{project_id}/messages:send"
    fcm_project_id: str | None = None
    webhook_url: str | None = None
    # HMAC-SHA256 key of the webhook's signature, at least 32 characters.
    webhook_secret: str | None = Field(None, min_length=32)
    # Per rule name, the notification's title and body; "default" for rules not listed.
    delivery_messages: dict[str, PushMessage] = {
        "default": PushMessage(
            title="We miss you", body="It has been {threshold_hours:g} hours. A minute today keeps you going."
        )
    }
    # Nudges read, sent and recorded per transaction (a killed dispatcher re-sends at most these).
    delivery_batch_size: int = Field(500, gt=0, le=10000)
    # Requests in flight at once: at 50 ms an answer, 100 would cap a dispatcher at 2,000/s.
    delivery_concurrency: int = Field(256, gt=0, le=2000)
    # Sends per second at most (FCM's default quota is 600,000 a minute per project: 10,000/s).
    delivery_rate_per_second: float = Field(8000, gt=0)
    # Attempts per message for 429, 5xx and time-outs, waiting base * 2**n (or Retry-After) between.
    delivery_max_attempts: int = Field(5, ge=1, le=50)
    delivery_backoff_seconds: float = Field(1.0, gt=0)
    delivery_backoff_max_seconds: float = Field(30.0, gt=0)
    # One request's time-out.
    delivery_timeout_seconds: float = Field(10.0, gt=0)
    # A nudge older than this when its turn comes is not sent (reason `expired`): no stale push
    # after a long outage.
    delivery_max_age_seconds: float = Field(3600, gt=0)
    # Beat: a deliver_nudges task this often; each drains the feed for at most DELIVERY_PASS_SECONDS.
    delivery_interval_seconds: float = Field(10, gt=0)
    delivery_pass_seconds: float = Field(60, gt=0)

    # Observability
    # "json": every log line of the worker and beat is one JSON object (with the task id).
    log_format: Literal["text", "json"] = "text"
    # Folder shared by a worker's processes for Prometheus metrics (prometheus_client's
    # multiprocess mode); unset: no metrics are kept. One folder per worker (host/container).
    prometheus_multiproc_dir: Path | None = None
    # When set (and the folder is), the worker's main process serves /metrics on this port.
    metrics_port: int | None = Field(None, ge=1, le=65535)

    # Import and retention
    import_chunk_size: int = Field(5000, gt=0)
    import_max_value_bytes: int = Field(65536, gt=0)
    max_clock_skew_seconds: int = Field(300, ge=0)
    retention_days: int | None = Field(None, gt=0)
    retention_chunk_size: int = Field(10000, gt=0)

    @field_validator("database_url", "worker_database_url", "database_session_url")
    @classmethod
    def _psycopg3_driver(cls, url: str | None) -> str | None:
        """Accept plain postgres:// URLs (as Supabase prints them) and pin the psycopg 3 driver."""
        if url is None:
            return None
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def engine_database_url(self) -> str:
        """The URL the engine connects with: its own login where configured."""
        return self.worker_database_url or self.database_url

    @model_validator(mode="after")
    def _passwords_into_their_urls(self) -> Settings:
        """DATABASE_PASSWORD into DATABASE_URL, WORKER_DATABASE_PASSWORD into WORKER_DATABASE_URL,
        percent-encoded by SQLAlchemy, so every reader of the URL gets the password intact."""
        for url_field, password_field in (
            ("database_url", "database_password"),
            ("worker_database_url", "worker_database_password"),
        ):
            password: SecretStr | None = getattr(self, password_field)
            if password is None:
                continue
            url_name, password_name = url_field.upper(), password_field.upper()
            url: str | None = getattr(self, url_field)
            if url is None:
                raise ValueError(f"{password_name} needs {url_name} (the login it is the password of)")
            parsed = make_url(url)
            if parsed.password is not None:
                raise ValueError(f"{url_name} has a password and {password_name} is set: give it in one place")
            setattr(self, url_field, parsed.set(password=password.get_secret_value()).render_as_string(False))
        return self

    @model_validator(mode="after")
    def _metrics_need_their_folder(self) -> Settings:
        """A worker's pool children keep their numbers in the folder; without it, none to serve."""
        if self.metrics_port is not None and self.prometheus_multiproc_dir is None:
            raise ValueError("METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR (the folder the worker's processes share)")
        return self

    @field_validator("delivery_messages")
    @classmethod
    def _default_message(cls, messages: dict[str, PushMessage]) -> dict[str, PushMessage]:
        if "default" not in messages:
            raise ValueError('needs a "default" entry, for the rules it does not name')
        return messages

    @field_validator("nudge_rules", mode="before")
    @classmethod
    def _valid_rules(cls, rules: Any) -> Any:
        """Each rule checked by validate_rules: the error names the rule and its field."""
        if not isinstance(rules, list):
            return rules  # not a list: pydantic's own error says so
        try:
            return validate_rules(rules)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @property
    def session_url(self) -> str:
        """The URL for work that needs one server session throughout."""
        return self.database_session_url or self.database_url


def validation_message(error: Any) -> str:
    """A pydantic error's message, without the "Value error, " pydantic puts before a validator's
    own ValueError (whose text is already the whole message)."""
    raised = (error.get("ctx") or {}).get("error")
    if error["type"] == "value_error" and isinstance(raised, ValueError):
        return str(raised)
    return str(error["msg"])


def _shown(value: Any) -> str:
    """A rule's value as it was written in JSON (`-1`, `"Europe/Pariss"`), shortened."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _rule_problem(position: int, raw: Any, exc: ValidationError) -> str:
    """One line: which rule (position, name) and field, and what is wrong with it."""
    name = raw.get("name") if isinstance(raw, dict) else None
    where = f"rule {position}" + (f" ({_shown(name)})" if isinstance(name, str) else "")
    errors = exc.errors()
    error = errors[0]
    field = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        known = ", ".join(NudgeRule.model_fields)
        message = f"unknown field (a rule has {known})"
    elif error["type"] == "missing":
        message = "missing (required)"
    else:
        message = validation_message(error)
        scalar = error.get("input")
        if scalar is None or isinstance(scalar, (str, int, float, bool)):
            message += f" (got {_shown(scalar)})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {field}: {message}{more}" if field else f"{where}: {message}{more}"


def validate_rules(rules: Sequence[Any]) -> list[NudgeRule]:
    """Rules (as parsed from JSON) as NudgeRules, or ValueError with one line naming the first bad
    rule and field, e.g. `rule 2 ("inactive_36h"): threshold_hours: Input should be greater than 0
    (got -1)`. Names must be unique (a rule's episodes, scan state and shadow records go by it)."""
    out: list[NudgeRule] = []
    for position, raw in enumerate(rules, start=1):
        if isinstance(raw, NudgeRule):
            rule = raw
        else:
            try:
                rule = NudgeRule.model_validate(raw)
            except ValidationError as exc:
                raise ValueError(_rule_problem(position, raw, exc)) from None
        if earlier := next((i for i, r in enumerate(out, start=1) if r.name == rule.name), None):
            raise ValueError(f"rule {position} ({_shown(rule.name)}): name: rule {earlier} has the same name")
        out.append(rule)
    return out


def parse_rules(text: str, source: str = "rules") -> list[NudgeRule]:
    """Rules from JSON text, validated exactly as NUDGE_RULES is: a list of rule objects (one
    object alone is one rule). Raises UsageError with one line that starts with `source` and
    names the rule and field. For commands that take rules of their own (e.g. `python -m worker
    simulate --rules`), so a proposed rule is refused for the same reasons a configured one is."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: not JSON: {exc}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise UsageError(f"{source}: expected a JSON list of rules, got {_shown(data)}")
    try:
        return validate_rules(data)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def stopped_services_note() -> str | None:
    """Why a server may not answer: the URLs in use are those of embedded servers now stopped."""
    try:
        text = SERVICES_ENV_FILE.read_text(encoding="utf-8")
    except OSError:
        return None
    if not text.startswith(SERVICES_STOPPED_MARK):
        return None
    from dotenv import dotenv_values

    configured = {k.upper() for k, v in (*os.environ.items(), *dotenv_values(".env").items()) if v}
    if {"DATABASE_URL", "REDIS_URL"} <= configured:
        return None
    return (
        f"the servers scripts/run started are stopped ({SERVICES_ENV_FILE}): "
        "start scripts/run again, or configure DATABASE_URL and REDIS_URL"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
