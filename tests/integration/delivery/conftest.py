"""Delivery fixtures: the FCM stub with its service account key, settings pointing at it, and data."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.delivery.servers import FcmStub, WebhookReceiver

WEBHOOK_SECRET = "whsec-test-0123456789abcdef0123456789abcdef"


@pytest.fixture
def fcm(tmp_path: Path) -> Iterator[FcmStub]:
    stub = FcmStub(tmp_path / "service-account.json").start()
    yield stub
    stub.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    receiver.start()
    yield receiver
    receiver.stop()


def fcm_settings(stub: FcmStub, **extra: str) -> dict[str, str]:
    """The environment of a dispatcher that sends to the stub, with short back-offs."""
    return {
        "DELIVERY_PROVIDER": "fcm",
        "FCM_CREDENTIALS_FILE": str(stub.key_file),
        "FCM_ENDPOINT": stub.endpoint,
        "DELIVERY_BACKOFF_SECONDS": "0.05",
        "DELIVERY_BACKOFF_MAX_SECONDS": "2",
        "DELIVERY_TIMEOUT_SECONDS": "5",
        "DELIVERY_MESSAGES": json.dumps(
            {
                "default": {"title": "Hello", "body": "rule {rule}"},
                "inactive_48h": {"title": "We miss you", "body": "{threshold_hours:g} hours since we saw you"},
            }
        ),
        **extra,
    }


@pytest.fixture
def fcm_env(settings_env: str, fcm: FcmStub, monkeypatch: pytest.MonkeyPatch) -> FcmStub:
    for key, value in fcm_settings(fcm).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return fcm


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def add_user(conn: psycopg.Connection, *tokens: str, opt_out: bool = False) -> uuid.UUID:
    """A user (signed up a week ago) with these device tokens (android)."""
    meta = {"nudges_opt_out": "true"} if opt_out else {}
    user = conn.execute(
        "insert into auth.users (id, created_at, raw_user_meta_data) values (gen_random_uuid(), %s, %s) returning id",
        (datetime.now(UTC) - timedelta(days=7), json.dumps(meta)),
    ).fetchone()[0]
    for token in tokens:
        conn.execute("insert into device_tokens (user_id, token, platform) values (%s, %s, 'android')", (user, token))
    return user


def add_nudge(conn: psycopg.Connection, user: uuid.UUID, rule: str = "inactive_48h", age: float = 0) -> uuid.UUID:
    """A nudge_sent as the scan writes it, `age` seconds old."""
    value = {"rule": rule, "threshold_hours": 48, "last_active_at": "2026-12-01T00:00:00.000000Z", "scan_id": "t"}
    return conn.execute(
        "insert into engagement_events (user_id, timestamp, event_type, value) values (%s, %s, 'nudge_sent', %s)"
        " returning id",
        (user, datetime.now(UTC) - timedelta(seconds=age), json.dumps(value)),
    ).fetchone()[0]


def outcomes(conn: psycopg.Connection) -> dict[uuid.UUID, list[tuple[str, dict[str, Any]]]]:
    """Per nudge id, every outcome event written for it (exactly one each is the promise)."""
    found: dict[uuid.UUID, list[tuple[str, dict[str, Any]]]] = {}
    for event_type, value in conn.execute(
        "select event_type, value from engagement_events"
        " where event_type in ('nudge_delivered', 'nudge_failed') order by timestamp"
    ):
        found.setdefault(uuid.UUID(value["nudge_id"]), []).append((event_type, value))
    return found


def tokens(conn: psycopg.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select token from device_tokens")}
