"""Settings and the Celery configuration as a fresh process reads them from real files:
environment over `.env` (working directory) over `services.env` (the state folder), and the
beat schedule built from those settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.worker_process import PROJECT_ROOT

NAMES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_QUEUE",
    "RETENTION_DAYS",
    "SCAN_INTERVAL_SECONDS",
    "RECONCILE_INTERVAL_HOURS",
    "EVENTS_STATE_DIR",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
)


def fresh_process(code: str, cwd: Path, **env: str) -> dict:
    """Run `code` (which prints JSON) in a new interpreter, without this process's settings."""
    base = {k: v for k, v in os.environ.items() if k.upper() not in NAMES}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "PYTHONPATH": str(PROJECT_ROOT), **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


READ_SETTINGS = (
    "import json; from events_schema.settings import get_settings as g; s = g(); "
    "print(json.dumps({'db': s.database_url, 'redis': s.redis_url, 'queue': s.celery_queue, "
    "'days': s.retention_days}))"
)


def test_environment_over_dotenv_over_services_env(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "services.env").write_text(
        "DATABASE_URL=postgresql://from-services/db\nREDIS_URL=redis://from-services:1/0\n"
        "CELERY_QUEUE=from-services\nRETENTION_DAYS=1\n"
    )
    (tmp_path / ".env").write_text("REDIS_URL=redis://from-dotenv:2/0\nCELERY_QUEUE=from-dotenv\nRETENTION_DAYS=2\n")
    seen = fresh_process(READ_SETTINGS, tmp_path, EVENTS_STATE_DIR=str(state), RETENTION_DAYS="3")
    assert seen == {
        "db": "postgresql+psycopg://from-services/db",
        "redis": "redis://from-dotenv:2/0",
        "queue": "from-dotenv",
        "days": 3,
    }


def test_without_files_the_defaults_apply(tmp_path: Path) -> None:
    seen = fresh_process(READ_SETTINGS, tmp_path, EVENTS_STATE_DIR=str(tmp_path / "none"))
    assert seen == {
        "db": "postgresql+psycopg://postgres@127.0.0.1:5432/engagement",
        "redis": "redis://127.0.0.1:6379/0",
        "queue": "engagement",
        "days": None,
    }


READ_CELERYCONFIG = (
    "import json, celeryconfig as c; "
    "print(json.dumps({name: {'task': e['task'], 'kwargs': e.get('kwargs', {}), "
    "'seconds': e['schedule'] if isinstance(e['schedule'], (int, float)) else None, "
    "'crontab': None if isinstance(e['schedule'], (int, float)) else "
    "[sorted(e['schedule'].hour), sorted(e['schedule'].minute)]} for name, e in c.beat_schedule.items()} "
    "| {'acks_late': c.task_acks_late, 'reject_on_worker_lost': c.task_reject_on_worker_lost, "
    "'queue': c.task_default_queue}))"
)


def test_the_beat_schedule_scans_reconciles_and_applies_retention(tmp_path: Path) -> None:
    config = fresh_process(
        READ_CELERYCONFIG,
        tmp_path,
        EVENTS_STATE_DIR=str(tmp_path / "none"),
        SCAN_INTERVAL_SECONDS="60",
        RECONCILE_INTERVAL_HOURS="6",
        CELERY_QUEUE="q1",
    )
    assert config.pop("scan-inactive") == {"task": "scan_inactive", "kwargs": {}, "seconds": 60, "crontab": None}
    assert config.pop("reconcile-inactive") == {
        "task": "scan_inactive",
        "kwargs": {"full": True},
        "seconds": 6 * 3600,
        "crontab": None,
    }
    assert config.pop("apply-retention") == {
        "task": "apply_retention",
        "kwargs": {},
        "seconds": None,
        "crontab": [[3], [17]],
    }
    assert config == {"acks_late": True, "reject_on_worker_lost": True, "queue": "q1"}


def test_the_default_schedule(tmp_path: Path) -> None:
    config = fresh_process(READ_CELERYCONFIG, tmp_path, EVENTS_STATE_DIR=str(tmp_path / "none"))
    assert (config["scan-inactive"]["seconds"], config["reconcile-inactive"]["seconds"]) == (900, 24 * 3600)
