"""The webhook provider against a receiver that checks the signature, and the command's start-up errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.integration.delivery.conftest import WEBHOOK_SECRET, add_nudge, add_user, fcm_settings, outcomes, set_env
from tests.integration.delivery.servers import FcmStub, WebhookReceiver
from tests.integration.worker_process import PROJECT_ROOT
from worker.delivery.dispatcher import Dispatcher


def webhook_env(monkeypatch: pytest.MonkeyPatch, receiver: WebhookReceiver, secret: str = WEBHOOK_SECRET) -> None:
    set_env(
        monkeypatch,
        DELIVERY_PROVIDER="webhook",
        WEBHOOK_URL=f"{receiver.base}/push",
        WEBHOOK_SECRET=secret,
        DELIVERY_BACKOFF_SECONDS="0.05",
    )


def test_the_webhook_gets_a_signed_post_per_nudge_with_its_id_as_idempotency_key(
    settings_env: str, webhook: WebhookReceiver, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook_env(monkeypatch, webhook)
    dispatcher = Dispatcher()
    dispatcher.run()
    user = add_user(admin, "tok-w1", "tok-w2")
    nudge = add_nudge(admin, user)
    tokenless = add_nudge(admin, add_user(admin))  # the receiver may reach users by other means

    dispatcher.run()

    assert webhook.refused == 0
    bodies = {r.nudge_id: r for r in webhook.received}
    assert set(bodies) == {str(nudge), str(tokenless)}
    got = bodies[str(nudge)]
    assert got.headers["Idempotency-Key"] == str(nudge)
    assert got.body["user_id"] == str(user) and got.body["rule"] == "inactive_48h"
    assert sorted(t["token"] for t in got.body["tokens"]) == ["tok-w1", "tok-w2"]
    recorded = outcomes(admin)
    assert recorded[nudge][0][0] == "nudge_delivered" and recorded[nudge][0][1]["message_ids"][0].startswith("hook-")
    assert recorded[tokenless][0][0] == "nudge_delivered"


def test_a_wrong_secret_is_refused_by_the_receiver_and_recorded(
    settings_env: str, webhook: WebhookReceiver, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook_env(monkeypatch, webhook, secret="not-the-receivers-secret-0123456789abcdef")
    dispatcher = Dispatcher()
    dispatcher.run()
    nudge = add_nudge(admin, add_user(admin, "tok"))

    dispatcher.run()

    assert webhook.refused == 1 and webhook.received == []
    [(kind, value)] = outcomes(admin)[nudge]
    assert (kind, value["reason"], value["code"]) == ("nudge_failed", "refused", "401")


def deliver_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "deliver", *args],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"FCM_CREDENTIALS_FILE": "missing.json"}, "FCM_CREDENTIALS_FILE missing.json does not exist"),
        ({"FCM_ENDPOINT": "fcm.example/v1"}, "FCM_ENDPOINT must be an http(s) URL"),
        ({"FCM_CREDENTIALS_FILE": ""}, "needs FCM_CREDENTIALS_FILE"),
        ({"DELIVERY_PROVIDER": "none"}, "DELIVERY_PROVIDER is none"),
        ({"DELIVERY_PROVIDER": "webhook"}, "needs WEBHOOK_URL and WEBHOOK_SECRET"),
    ],
)
def test_bad_settings_are_one_line_at_start_up(
    settings_env: str, fcm: FcmStub, change: dict[str, str], message: str
) -> None:
    env = {**fcm_settings(fcm), "DATABASE_URL": settings_env, **change}
    result = deliver_cli({k: v for k, v in env.items() if v}, "--once")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_key_file_that_is_not_a_service_account_is_one_line(settings_env: str, fcm: FcmStub, tmp_path: Path) -> None:
    bad = tmp_path / "user-credentials.json"
    bad.write_text(json.dumps({"type": "authorized_user"}))
    result = deliver_cli(
        {**fcm_settings(fcm), "DATABASE_URL": settings_env, "FCM_CREDENTIALS_FILE": str(bad)}, "--once"
    )
    assert result.returncode == 2 and "is not a service account key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_deliver_once_sends_what_waits_and_exits(settings_env: str, fcm: FcmStub, admin: psycopg.Connection) -> None:
    env = {**fcm_settings(fcm), "DATABASE_URL": settings_env}
    assert deliver_cli(env, "--once").returncode == 0  # the cursor starts here
    nudge = add_nudge(admin, add_user(admin, "tok-cli"))
    result = deliver_cli(env, "--once", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["delivered"], summary["caught_up"]) == (1, True)
    assert outcomes(admin)[nudge][0][0] == "nudge_delivered"
