"""deliver_nudges through a real Celery worker, the beat's entry, and the health line on the dispatcher."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.delivery.conftest import add_nudge, add_user, fcm_settings, outcomes, set_env
from tests.integration.delivery.servers import FcmStub, fcm_error
from tests.integration.delivery.test_webhook_and_cli import deliver_cli
from tests.integration.worker_process import celery_cli, celery_env, running_worker, task_result
from tests.unit.test_settings_files import fresh_process
from worker.health.checks import delivery


@pytest.mark.worker
def test_deliver_nudges_through_a_real_worker(
    db_url: str, redis_url: str, fcm: FcmStub, admin: psycopg.Connection
) -> None:
    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url, **fcm_settings(fcm))
    with running_worker(env, queue):
        first = task_result(redis_url, celery_cli(["call", "deliver_nudges"], env).stdout.strip())
        nudge = add_nudge(admin, add_user(admin, "tok-task"))
        second = task_result(redis_url, celery_cli(["call", "deliver_nudges"], env).stdout.strip())
    assert first["ran"] and first["read"] == 0
    assert (second["delivered"], second["caught_up"]) == (1, True)
    assert outcomes(admin)[nudge][0][0] == "nudge_delivered"


def test_the_beat_schedules_deliveries_only_while_a_provider_is_set(tmp_path: object) -> None:
    code = (
        "import json, celeryconfig as c; print(json.dumps({k: str(v['schedule']) for k, v in c.beat_schedule.items()}))"
    )
    assert "deliver-nudges" not in fresh_process(code, tmp_path)  # type: ignore[arg-type]
    on = fresh_process(code, tmp_path, DELIVERY_PROVIDER="webhook", DELIVERY_INTERVAL_SECONDS="7")  # type: ignore[arg-type]
    assert on["deliver-nudges"] == "7.0"


def test_health_reports_the_dispatchers_lag_and_its_settings(
    fcm_env: FcmStub, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    now = datetime.now(UTC)
    never = delivery(admin, settings, now)
    assert not never.ok and "no pass yet" in never.detail

    assert deliver_cli({"DATABASE_URL": settings.database_url}, "--once").returncode == 0
    fresh = delivery(admin, settings, datetime.now(UTC))
    assert fresh.ok and fresh.data["lag_seconds"] < 60

    limit = 2 * (settings.delivery_interval_seconds + settings.delivery_pass_seconds)
    caught_up = admin.execute("select caught_up_at from nudge_delivery_state").fetchone()[0]
    assert delivery(admin, settings, caught_up + timedelta(seconds=limit)).ok
    late = delivery(admin, settings, caught_up + timedelta(seconds=limit + 1))
    assert not late.ok and "behind" in late.detail

    set_env(monkeypatch, FCM_CREDENTIALS_FILE="gone.json")
    broken = delivery(admin, get_settings(), now)
    assert not broken.ok and broken.detail == "FCM_CREDENTIALS_FILE gone.json does not exist"

    set_env(monkeypatch, DELIVERY_PROVIDER="none")
    assert delivery(admin, get_settings(), now).ok


def test_a_pause_is_shown_with_its_reason(fcm_env: FcmStub, admin: psycopg.Connection) -> None:
    add_nudge(admin, add_user(admin, "tok"))
    admin.execute(
        "update nudge_delivery_state set feed_cursor = 'x', caught_up_at = %s, paused_until = %s,"
        " pause_reason = 'provider unavailable (UNAVAILABLE)'",
        (datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=1)),
    )
    check = delivery(admin, get_settings(), datetime.now(UTC))
    assert check.ok and "paused until" in check.detail and "UNAVAILABLE" in check.detail
    assert json.dumps(check.as_dict())


def test_a_pass_is_counted_in_the_metrics(fcm_env: FcmStub, admin: psycopg.Connection) -> None:
    from prometheus_client import REGISTRY

    from worker.delivery.dispatcher import Dispatcher
    from worker.metrics.registry import record_delivery

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("engagement_nudges_delivered_total", provider="fcm"),
        sample("engagement_nudges_delivery_failed_total", provider="fcm", reason="no_token"),
        sample("engagement_device_tokens_removed_total", provider="fcm"),
    )
    dispatcher = Dispatcher()
    dispatcher.run()
    add_nudge(admin, add_user(admin, "tok-ok"))
    add_nudge(admin, add_user(admin))
    add_nudge(admin, add_user(admin, "tok-dead", "tok-alive"))
    fcm_env.script("tok-dead", fcm_error(404, "UNREGISTERED"))

    record_delivery(dispatcher.run().as_dict())

    after = (
        sample("engagement_nudges_delivered_total", provider="fcm"),
        sample("engagement_nudges_delivery_failed_total", provider="fcm", reason="no_token"),
        sample("engagement_device_tokens_removed_total", provider="fcm"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1]
    assert sample("engagement_delivery_lag_seconds") == 0.0
