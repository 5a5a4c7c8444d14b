"""The nudge engine: Celery tasks over plain functions that read and write the event log."""

from worker.app import app

__all__ = ["app"]
