"""LOG_FORMAT=json: every log line of a worker or beat is one JSON object, with the task id.

Celery sets up its own handlers (in the main process and again in each pool child); the
after_setup_* signals then give each handler this formatter. The task id is the running task's,
or, for Celery's own lines about a task ("Task ... received/succeeded"), the one they name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from celery._state import get_current_task
from celery.signals import after_setup_logger, after_setup_task_logger

from events_schema.settings import get_settings


class JsonFormatter(logging.Formatter):
    """One line: time (UTC, ISO-8601), level, logger, message, task id and name, pid."""

    def format(self, record: logging.LogRecord) -> str:
        task_id, task_name = _task_of(record)
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "task_id": task_id,
            "task_name": task_name,
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def _task_of(record: logging.LogRecord) -> tuple[str | None, str | None]:
    task = get_current_task()
    if task is not None and task.request.id:
        return task.request.id, task.name
    for data in (record.args, getattr(record, "data", None)):
        if isinstance(data, Mapping) and "id" in data:
            name = data.get("name")
            return str(data["id"]), None if name is None else str(name)
    return None, None


def use_json(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_when_configured(logger: logging.Logger | None = None, **_: Any) -> None:
    if logger is not None and get_settings().log_format == "json":
        use_json(logger)
