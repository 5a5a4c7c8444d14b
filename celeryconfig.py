"""Celery configuration, built from the project's settings (environment first).

Loaded by name (`config_from_object("celeryconfig")`) so prefork children import it themselves.
CELERY_BROKER_URL / CELERY_RESULT_BACKEND in the environment still override the broker.
"""

from celery.schedules import crontab

from events_schema.settings import get_settings

_settings = get_settings()

broker_url = _settings.redis_url
result_backend = _settings.redis_url
broker_connection_retry_on_startup = True
# Longer than any task's hard limit, so Redis never re-delivers a task that is still running.
broker_transport_options = {
    "visibility_timeout": _settings.broker_visibility_timeout_seconds
    or max(3600, 2 * _settings.task_time_limit_seconds)
}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

task_default_queue = _settings.celery_queue
# A task whose worker dies is re-run, so every task is idempotent.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_soft_time_limit = _settings.task_soft_time_limit_seconds
task_time_limit = _settings.task_time_limit_seconds
result_expires = 24 * 3600

imports = ("worker.tasks",)

# Run exactly one beat. A duplicate beat would only repeat scans, which are harmless: the
# scan's lease turns the overlap away and the database allows one nudge per episode.
beat_schedule = {
    "scan-inactive": {
        "task": "scan_inactive",
        "schedule": _settings.scan_interval_seconds,
    },
    "reconcile-inactive": {
        "task": "scan_inactive",
        "schedule": _settings.reconcile_interval_hours * 3600,
        "kwargs": {"full": True},
    },
    # Push delivery (docs/delivery.md): a short pass every few seconds while a provider is set.
    **(
        {"deliver-nudges": {"task": "deliver_nudges", "schedule": _settings.delivery_interval_seconds}}
        if _settings.delivery_provider != "none"
        else {}
    ),
    # Daily, off-peak (UTC); does nothing while RETENTION_DAYS is unset.
    "apply-retention": {
        "task": "apply_retention",
        "schedule": crontab(hour=3, minute=17),
    },
}
