"""Every FCM answer class, against a loopback server speaking FCM HTTP v1 and Google's OAuth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.integration.delivery.conftest import add_nudge, add_user, outcomes, set_env, tokens
from tests.integration.delivery.servers import FcmStub, fcm_error
from worker.delivery.dispatcher import Dispatcher


def start() -> Dispatcher:
    """A dispatcher whose first pass has set its cursor (it starts from "now")."""
    dispatcher = Dispatcher()
    summary = dispatcher.run()
    assert summary.ran and summary.read == 0
    return dispatcher


def test_each_nudge_reaches_every_device_of_its_user_once_and_is_recorded_delivered(
    fcm_env: FcmStub, admin: psycopg.Connection
) -> None:
    dispatcher = start()
    two = add_user(admin, "tok-a1", "tok-a2")
    one = add_user(admin, "tok-b1")
    first, second = add_nudge(admin, two), add_nudge(admin, one, rule="custom_rule")

    summary = dispatcher.run()

    assert (summary.read, summary.delivered, dict(summary.failed)) == (2, 2, {}), (summary, fcm_env.sent(False))
    sent = fcm_env.sent()
    assert sorted(r.token for r in sent) == ["tok-a1", "tok-a2", "tok-b1"]
    by_token = {r.token: r.body["message"] for r in sent}
    assert by_token["tok-a1"]["notification"] == {"title": "We miss you", "body": "48 hours since we saw you"}
    assert by_token["tok-b1"]["notification"] == {"title": "Hello", "body": "rule custom_rule"}
    assert by_token["tok-b1"]["data"] == {"nudge_id": str(second), "rule": "custom_rule"}
    assert fcm_env.state.token_requests == 1  # one OAuth exchange, reused
    recorded = outcomes(admin)
    assert set(recorded) == {first, second}
    kind, value = recorded[first][0]
    assert kind == "nudge_delivered" and value["attempts"] == 1 and value["devices"] == 2
    assert all(m.startswith("projects/demo-project/messages/") for m in value["message_ids"])
    # Nothing new: nothing sent again.
    assert dispatcher.run().read == 0
    assert len(fcm_env.sent()) == 3


def test_429_waits_out_retry_after_then_delivers(fcm_env: FcmStub, admin: psycopg.Connection) -> None:
    dispatcher = start()
    nudge = add_nudge(admin, add_user(admin, "tok-q"))
    fcm_env.script("tok-q", (429, fcm_error(429, "QUOTA_EXCEEDED")[1], {"Retry-After": "1"}))

    dispatcher.run()

    tries = fcm_env.sent(ok_only=False)
    assert [r.body["_status"] for r in tries] == [429, 200]
    # The back-off alone would be 0.05 s; the provider asked for a second.
    assert tries[1].at - tries[0].at >= 0.95
    [(kind, value)] = outcomes(admin)[nudge]
    assert (kind, value["attempts"]) == ("nudge_delivered", 2)


def test_5xx_is_retried_with_backoff_until_it_goes_through(fcm_env: FcmStub, admin: psycopg.Connection) -> None:
    dispatcher = start()
    nudge = add_nudge(admin, add_user(admin, "tok-u"))
    fcm_env.script("tok-u", fcm_error(503, "UNAVAILABLE"), fcm_error(500, "INTERNAL"))

    dispatcher.run()

    assert [r.body["_status"] for r in fcm_env.sent(ok_only=False)] == [503, 500, 200]
    [(kind, value)] = outcomes(admin)[nudge]
    assert (kind, value["attempts"]) == ("nudge_delivered", 3)


def test_attempts_run_out_while_the_provider_takes_others_the_nudge_fails_with_the_code(
    fcm_env: FcmStub, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, DELIVERY_MAX_ATTEMPTS="3")
    dispatcher = start()
    bad = add_nudge(admin, add_user(admin, "tok-sick"))
    good = add_nudge(admin, add_user(admin, "tok-fine"))
    fcm_env.script("tok-sick", *[fcm_error(500, "INTERNAL")] * 3)

    summary = dispatcher.run()

    recorded = outcomes(admin)
    [(kind, value)] = recorded[bad]
    assert (kind, value["reason"], value["code"], value["attempts"]) == (
        "nudge_failed",
        "retries_exhausted",
        "INTERNAL",
        3,
    )
    assert recorded[good][0][0] == "nudge_delivered"
    assert summary.caught_up and summary.deferred == 0


def test_an_unregistered_token_is_removed_and_the_other_device_still_gets_it(
    fcm_env: FcmStub, admin: psycopg.Connection
) -> None:
    dispatcher = start()
    both = add_nudge(admin, add_user(admin, "tok-dead", "tok-alive"))
    only_dead = add_nudge(admin, add_user(admin, "tok-gone"))
    fcm_env.script("tok-dead", fcm_error(404, "UNREGISTERED"))
    fcm_env.script("tok-gone", fcm_error(404, "UNREGISTERED"))

    summary = dispatcher.run()

    assert tokens(admin) == {"tok-alive"}
    recorded = outcomes(admin)
    kind, value = recorded[both][0]
    assert (kind, value["tokens_removed"]) == ("nudge_delivered", 1)
    kind, value = recorded[only_dead][0]
    assert (kind, value["reason"], value["code"], value["tokens_removed"]) == (
        "nudge_failed",
        "unregistered",
        "UNREGISTERED",
        1,
    )
    assert summary.tokens_removed == 2
    # Retried once only: a dead token is not worth a second request.
    assert [r.token for r in fcm_env.sent(ok_only=False)].count("tok-dead") == 1


def test_an_invalid_token_is_removed_but_a_refused_payload_keeps_the_token(
    fcm_env: FcmStub, admin: psycopg.Connection
) -> None:
    dispatcher = start()
    invalid = add_nudge(admin, add_user(admin, "tok-invalid"))
    payload = add_nudge(admin, add_user(admin, "tok-payload"))
    fcm_env.script(
        "tok-invalid",
        fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    )
    fcm_env.script("tok-payload", fcm_error(400, "INVALID_ARGUMENT", "Invalid value", bad_request=True))

    dispatcher.run()

    assert tokens(admin) == {"tok-payload"}
    recorded = outcomes(admin)
    assert recorded[invalid][0][1]["reason"] == "unregistered"
    kind, value = recorded[payload][0]
    assert (kind, value["reason"], value["code"], value["attempts"]) == (
        "nudge_failed",
        "refused",
        "INVALID_ARGUMENT",
        1,
    )


def test_no_token_and_opted_out_since_the_decision_are_not_sent_with_the_reason(
    fcm_env: FcmStub, admin: psycopg.Connection
) -> None:
    dispatcher = start()
    no_token = add_nudge(admin, add_user(admin))
    changed_mind = add_user(admin, "tok-optout")
    opted_out = add_nudge(admin, changed_mind)
    # After the scan decided: the user opts out in the app.
    admin.execute(
        'update auth.users set raw_user_meta_data = \'{"nudges_opt_out": "true"}\' where id = %s', (changed_mind,)
    )
    still_in = add_nudge(admin, add_user(admin, "tok-in"))

    summary = dispatcher.run()

    assert [r.token for r in fcm_env.sent(ok_only=False)] == ["tok-in"]
    recorded = outcomes(admin)
    assert [(k, v["reason"]) for k, v in recorded[no_token]] == [("nudge_failed", "no_token")]
    assert [(k, v["reason"]) for k, v in recorded[opted_out]] == [("nudge_failed", "opted_out")]
    assert recorded[still_in][0][0] == "nudge_delivered"
    assert dict(summary.failed) == {"no_token": 1, "opted_out": 1}


def test_a_nudge_older_than_the_max_age_is_not_sent(
    fcm_env: FcmStub, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, DELIVERY_MAX_AGE_SECONDS="600")
    dispatcher = start()
    stale = add_nudge(admin, add_user(admin, "tok-stale"), age=601)
    fresh = add_nudge(admin, add_user(admin, "tok-fresh"), age=590)

    dispatcher.run()

    assert [r.token for r in fcm_env.sent(ok_only=False)] == ["tok-fresh"]
    recorded = outcomes(admin)
    assert recorded[stale][0][1]["reason"] == "expired"
    assert recorded[fresh][0][0] == "nudge_delivered"


def test_a_provider_outage_loses_nothing_and_the_backlog_goes_out_when_it_returns(
    fcm_env: FcmStub, admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, DELIVERY_MAX_ATTEMPTS="3", DELIVERY_BACKOFF_MAX_SECONDS="0.2", DELIVERY_BATCH_SIZE="4")
    dispatcher = start()
    delivered_before = add_nudge(admin, add_user(admin, "tok-before"))
    assert dispatcher.run().delivered == 1
    fcm_env.state.down = fcm_error(503, "UNAVAILABLE")
    backlog = [add_nudge(admin, add_user(admin, f"tok-{i}")) for i in range(10)]

    during = dispatcher.run()

    assert (during.delivered, dict(during.failed), during.deferred) == (0, {}, 4)
    assert set(outcomes(admin)) == {delivered_before}
    state = admin.execute("select paused_until, pause_reason from nudge_delivery_state").fetchone()
    assert state[0] is not None and "provider unavailable" in state[1]
    # Still down at the next passes: still nothing recorded.
    dispatcher.run(follow=True, max_seconds=1.0)
    assert set(outcomes(admin)) == {delivered_before}

    fcm_env.state.down = None
    after = dispatcher.run(follow=True, max_seconds=20, stop=lambda: len(outcomes(admin)) == 11)

    recorded = outcomes(admin)
    assert set(recorded) == {delivered_before, *backlog}
    assert all(len(v) == 1 and v[0][0] == "nudge_delivered" for v in recorded.values())
    assert after.caught_up
    assert {r.token for r in fcm_env.sent()} == {"tok-before", *(f"tok-{i}" for i in range(10))}
    assert len(fcm_env.sent()) == 11  # each delivered once


def test_an_access_token_fcm_refuses_is_refreshed(fcm_env: FcmStub, admin: psycopg.Connection) -> None:
    dispatcher = start()
    add_nudge(admin, add_user(admin, "tok-1"))
    dispatcher.run()
    fcm_env.state.tokens_issued.clear()  # FCM no longer accepts the access token held
    nudge = add_nudge(admin, add_user(admin, "tok-2"))

    dispatcher.run()

    assert outcomes(admin)[nudge][0][0] == "nudge_delivered"
    assert fcm_env.state.token_requests == 2


def test_a_retry_after_past_the_ceiling_pauses_the_dispatcher_and_nothing_is_sent_twice(
    fcm_env: FcmStub, admin: psycopg.Connection
) -> None:
    """FCM asks for 10 minutes: the nudge waits (no outcome, cursor before it, the dispatcher
    paused that long); the nudge after it, delivered meanwhile, is not sent again on the re-read."""
    dispatcher = start()
    waiting = add_nudge(admin, add_user(admin, "tok-wait"))
    after = add_nudge(admin, add_user(admin, "tok-after"))
    fcm_env.script("tok-wait", (429, fcm_error(429, "QUOTA_EXCEEDED")[1], {"Retry-After": "600"}))

    first = dispatcher.run()

    assert (first.delivered, first.deferred) == (1, 1)
    assert set(outcomes(admin)) == {after}
    paused_until = admin.execute("select paused_until from nudge_delivery_state").fetchone()[0]
    assert 590 <= (paused_until - datetime.now(UTC)).total_seconds() <= 600
    assert dispatcher.run().batches == 0  # still paused: not even a read

    later = dispatcher.run(now=lambda: datetime.now(UTC) + timedelta(seconds=601))

    assert (later.delivered, later.already_done) == (1, 1)
    assert sorted(r.token for r in fcm_env.sent(ok_only=False)) == ["tok-after", "tok-wait", "tok-wait"]
    assert {n: [k for k, _ in v] for n, v in outcomes(admin).items()} == {
        waiting: ["nudge_delivered"],
        after: ["nudge_delivered"],
    }


def test_the_database_holds_one_outcome_per_nudge(admin: psycopg.Connection) -> None:
    user = add_user(admin)
    nudge = add_nudge(admin, user)
    insert = "insert into engagement_events (user_id, event_type, value) values (%s, %s, %s)"
    admin.execute(insert, (user, "nudge_delivered", f'{{"nudge_id": "{nudge}"}}'))
    with pytest.raises(psycopg.errors.UniqueViolation):
        admin.execute(insert, (user, "nudge_failed", f'{{"nudge_id": "{nudge}"}}'))
