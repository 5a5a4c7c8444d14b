"""User inserts as PostgREST sends them by default (`Prefer: return=minimal`): no RETURNING.

With RETURNING, the SELECT policy refuses a row the user could not read back (another user's, a
soft-deleted one), which hides a gap in the INSERT policy; without it, only the INSERT policy
stands between a user and a forged row. Every clause of that policy is tried here alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.integration.schema.test_rls_contract import RESERVED, World, as_request, event, world  # noqa: F401

INSERT_MINIMAL = (
    'insert into public.engagement_events (user_id, "timestamp", event_type, value, is_deleted) '
    "values (%(user_id)s, coalesce(%(ts)s, now()), %(event_type)s, %(value)s, %(is_deleted)s)"
)


def test_a_user_logs_their_own_event_without_returning(
    api: psycopg.Connection,
    admin: psycopg.Connection,
    world: World,  # noqa: F811
) -> None:
    before = admin.execute("select count(*) from engagement_events where user_id = %s", (world.alice,)).fetchone()[0]
    as_request(api, "authenticated", world.alice, INSERT_MINIMAL, event(world.alice))
    api.commit()
    assert (
        admin.execute("select count(*) from engagement_events where user_id = %s", (world.alice,)).fetchone()[0]
        == before + 1
    )


@pytest.mark.parametrize("case", ["another user", "an hour ahead", "soft-deleted", *RESERVED])
def test_the_insert_policy_alone_refuses(
    api: psycopg.Connection,
    admin: psycopg.Connection,
    world: World,  # noqa: F811
    case: str,
) -> None:
    overrides: dict[str, Any] = {
        "another user": {"user_id": world.bob},
        "an hour ahead": {"ts": datetime.now(UTC) + timedelta(hours=1)},
        "soft-deleted": {"is_deleted": True},
    }.get(case, {"event_type": case})
    with pytest.raises(errors.InsufficientPrivilege, match="violates row-level security policy"):
        as_request(api, "authenticated", world.alice, INSERT_MINIMAL, event(world.alice, **overrides))
