"""The analyst's path from the outside, as PostgREST applies each request (`authenticator` login).

The report adds no view, function or role: its SQL is only reachable by running it, so these tests
run each query as anon and as a user and show that neither learns anything beyond RLS allows.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from events_schema.analytics.report import QUERIES, analyst_transaction, parameters, query
from events_schema.postgrest import claims_for, request
from tests.integration.analytics.cohorts import GRACE, RULE, build_cohorts

# The event mix, the holdout lift and shadow against live read only engagement_events, so a user
# who runs them gets what RLS lets them see (their own rows, never a nudge_withheld or a
# nudge_shadow); the others are refused.
ENGINE_TABLE_QUERIES = [file for name, file in QUERIES if name not in ("event_mix", "holdout_lift", "shadow_vs_live")]


@pytest.mark.parametrize("file", [file for _, file in QUERIES])
def test_anon_gets_nothing_from_any_analytics_query(
    admin: psycopg.Connection, api: psycopg.Connection, file: str
) -> None:
    world = build_cohorts(admin)
    with pytest.raises(errors.InsufficientPrivilege), request(api, "anon", claims_for("anon")):
        api.execute(query(file), parameters(world.period, [RULE], GRACE)).fetchall()


@pytest.mark.parametrize("file", ENGINE_TABLE_QUERIES)
def test_a_user_cannot_run_the_cohort_queries(admin: psycopg.Connection, api: psycopg.Connection, file: str) -> None:
    """They read engagement_users (sign-up times of everyone), which users are not granted."""
    world = build_cohorts(admin)
    with pytest.raises(errors.InsufficientPrivilege):  # noqa: SIM117
        with request(api, "authenticated", claims_for("authenticated", world.users["a1"])):
            api.execute(query(file), parameters(world.period, [RULE], GRACE)).fetchall()


def test_a_user_running_the_event_mix_sees_only_their_own_events(
    admin: psycopg.Connection, api: psycopg.Connection
) -> None:
    world = build_cohorts(admin)
    params = parameters(world.period, [RULE], GRACE)
    with request(api, "authenticated", claims_for("authenticated", world.users["a3"])):
        rows = api.execute(query("analytics_event_mix"), params).fetchall()
    # a3's own non-deleted events: app_open (week 0), nudge_sent (week 2), nudge_opened (week 3).
    assert sorted((r[1], r[3], r[4]) for r in rows) == [
        ("app_open", 1, 1),
        ("nudge_opened", 1, 1),
        ("nudge_sent", 1, 1),
    ]
    with request(api, "service_role", claims_for("service_role")):
        everyone = api.execute(query("analytics_event_mix"), params).fetchall()
    # The service role (the report) sees every user: 15 rows less a3's deleted one and 2 after as_of.
    assert sum(r[3] for r in everyone) == 12


def test_the_analyst_transaction_is_the_service_role_and_cannot_write(admin: psycopg.Connection) -> None:
    world = build_cohorts(admin)
    with admin.transaction():
        analyst_transaction(admin)
        assert admin.execute("select current_user, current_setting('transaction_read_only')").fetchone() == (
            "service_role",
            "on",
        )
    with pytest.raises(errors.ReadOnlySqlTransaction), admin.transaction():
        analyst_transaction(admin)
        admin.execute("delete from public.engagement_events where user_id = %s", (world.users["a1"],))
    assert (
        admin.execute(
            "select count(*) from public.engagement_events where user_id = %s", (world.users["a1"],)
        ).fetchone()[0]
        == 3
    )


def test_a_user_running_the_holdout_lift_never_learns_of_a_withheld_nudge(
    admin: psycopg.Connection, api: psycopg.Connection
) -> None:
    """Their own withheld decision is hidden by RLS: as they run it, the control arm is empty;
    the service role (the report) counts it."""
    world = build_cohorts(admin)
    user = world.users["a1"]
    admin.execute(
        "insert into public.engagement_events (user_id, timestamp, event_type, value) values"
        ' (%s, %s, \'nudge_withheld\', \'{"rule": "inactive_48h", "holdout_percent": 50, "holdout_salt": ""}\')',
        (user, world.period.start + (world.period.end - world.period.start) / 2),
    )
    params = {**parameters(world.period, [RULE], GRACE), "min_arm": 1}
    counts = {}
    for role, who in (("authenticated", user), ("service_role", None)):
        with request(api, role, claims_for(role, who)):
            rows = api.execute(query("analytics_holdout_lift"), params).fetchall()
        counts[role] = sum(r[6] for r in rows if r[0] is None and r[4] == 24)  # withheld_members, whole range
    assert counts == {"authenticated": 0, "service_role": 1}


def test_a_user_running_shadow_against_live_never_learns_of_a_shadow_record(
    admin: psycopg.Connection, api: psycopg.Connection
) -> None:
    """Their own shadow record is hidden by RLS: as they run it there is no shadow rule at all;
    the service role (the report) counts it."""
    world = build_cohorts(admin)
    user = world.users["a1"]
    admin.execute(
        "insert into public.engagement_events (user_id, timestamp, event_type, value) values"
        ' (%s, %s, \'nudge_shadow\', \'{"rule": "proposed_36h", "mode": "shadow"}\')',
        (user, world.period.start + (world.period.end - world.period.start) / 2),
    )
    params = parameters(world.period, [RULE], GRACE)
    seen = {}
    for role, who in (("authenticated", user), ("service_role", None)):
        with request(api, role, claims_for(role, who)):
            rows = api.execute(query("analytics_shadow_vs_live"), params).fetchall()
        seen[role] = [(r[1], r[3]) for r in rows if r[0] is None]  # shadow rule, records: whole range
    assert seen == {"authenticated": [], "service_role": [("proposed_36h", 1)]}
