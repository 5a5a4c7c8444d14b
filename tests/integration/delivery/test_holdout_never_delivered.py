"""A holdout's withheld nudge (nudge_withheld, docs/engine.md "Holdout") and a shadow rule's
record (nudge_shadow, "Shadow mode") never reach the push provider and get no outcome: the
dispatcher delivers nudge_sent only."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from tests.integration.delivery.conftest import add_nudge, add_user, outcomes
from tests.integration.delivery.servers import FcmStub
from worker.delivery.dispatcher import Dispatcher


@pytest.mark.parametrize("private", ["nudge_withheld", "nudge_shadow"])
def test_a_withheld_nudge_is_never_delivered(fcm_env: FcmStub, admin: psycopg.Connection, private: str) -> None:
    assert Dispatcher().run().ran  # the cursor starts here
    nudged, withheld = add_user(admin, "tok-nudged"), add_user(admin, "tok-withheld")
    sent = add_nudge(admin, nudged)
    value = {"rule": "inactive_48h", "threshold_hours": 48, "last_active_at": "2026-12-01T00:00:00.000000Z"}
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type, value) values (%s, %s, %s, %s)",
        (
            withheld,
            datetime.now(UTC),
            private,
            json.dumps({**value, "scan_id": "t", "holdout_percent": 50, "holdout_salt": ""}),
        ),
    )
    assert Dispatcher().run().ran
    assert [(r.token, r.nudge_id) for r in fcm_env.sent(ok_only=False)] == [("tok-nudged", str(sent))]
    assert set(outcomes(admin)) == {uuid.UUID(str(sent))}
