"""The report's nudge comparison counts how many of the nudged were reached by the push."""

from __future__ import annotations

import json

import psycopg

from tests.integration.analytics.cohorts import at, build_nudges, by, run_as_service


def test_the_nudged_group_counts_delivered_and_failed_pushes(admin: psycopg.Connection) -> None:
    world = build_nudges(admin)
    nudges = dict(
        admin.execute(
            "select user_id, id from engagement_events where event_type = 'nudge_sent' and user_id = any(%s)",
            ([world.users["n1"], world.users["n2"], world.users["h1"]],),
        ).fetchall()
    )
    for name, event_type in (("n1", "nudge_delivered"), ("n2", "nudge_failed")):
        admin.execute(
            "insert into engagement_events (user_id, timestamp, event_type, value) values (%s, %s, %s, %s)",
            (
                world.users[name],
                at("2026-11-05T10:00"),
                event_type,
                json.dumps({"nudge_id": str(nudges[world.users[name]])}),
            ),
        )

    rows = {k[0]: v for k, v in by(run_as_service(admin, world.period)["nudge_effect"].rows, "group").items()}

    # n1 delivered, n2 failed; h1 and h5 not (yet) recorded: the comparison says so.
    assert (rows["nudged"]["members"], rows["nudged"]["delivered"], rows["nudged"]["delivery_failed"]) == (4, 1, 1)
    assert (rows["held"]["delivered"], rows["held"]["delivery_failed"]) == (0, 0)
