"""One settings object for the whole project, read from the environment.

Precedence (highest first): process environment, `.env` in the working directory, the
state file written by `scripts/run` for the servers it started (so a second terminal finds
them without copying URLs), then the defaults below, which fit a machine with PostgreSQL
and Redis on loopback.
"""

from __future__ import annotations

import os
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("EVENTS_STATE_DIR", PROJECT_ROOT / ".local"))
SERVICES_ENV_FILE = STATE_DIR / "services.env"


class NudgeRule(BaseModel):
    """An inactivity rule: configuration, not code."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    threshold_hours: float = Field(gt=0)
    # None: every non-reserved event type counts as activity.
    event_types: list[str] | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(SERVICES_ENV_FILE, ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # Connections
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/engagement"
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

    @field_validator("database_url")
    @classmethod
    def _psycopg3_driver(cls, url: str) -> str:
        """Accept plain postgres:// URLs (as Supabase prints them) and pin the psycopg 3 driver."""
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @model_validator(mode="after")
    def _metrics_need_their_folder(self) -> Settings:
        """A worker's pool children keep their numbers in the folder; without it, none to serve."""
        if self.metrics_port is not None and self.prometheus_multiproc_dir is None:
            raise ValueError("METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR (the folder the worker's processes share)")
        return self

    @field_validator("nudge_rules")
    @classmethod
    def _unique_rule_names(cls, rules: list[NudgeRule]) -> list[NudgeRule]:
        names = [r.name for r in rules]
        if len(names) != len(set(names)):
            raise ValueError(f"rule names must be unique, got {names}")
        return rules


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
