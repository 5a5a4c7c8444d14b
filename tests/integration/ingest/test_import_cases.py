"""The Python importer and the database's import_events() give every row of the shared table
(import_cases.py) the outcome written there, row by row, with the same summary."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from events_schema.postgrest import claims_for, request, rpc
from tests.integration.ingest.import_cases import CASES, Context
from tests.integration.ingest.import_helpers import add_users
from tests.integration.ingest.rpc_helpers import PARAMETERS, body_of
from worker.tasks import import_events


class RolledBack(Exception):
    """Raised to undo the RPC's writes, so the Python path starts from the same state."""


# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


def test_both_importers_give_every_case_its_outcome(admin: psycopg.Connection, api: psycopg.Connection) -> None:
    [user] = add_users(admin)
    rpc_summary = {}
    try:
        with request(api, "service_role", claims_for("service_role")) as conn:
            # The RPC's clock is its transaction's start; the Python path is given the same instant.
            [now] = conn.execute("select transaction_timestamp()").fetchone()
            ctx = Context(user=user, stranger=uuid.uuid4(), now=now)
            batch = [case.row(ctx) for case in CASES]
            rpc_summary = rpc(conn, "public.import_events", body_of(batch, "cases"), PARAMETERS)
            raise RolledBack
    except RolledBack:
        pass
    task_summary = import_events(batch, batch_id="cases", now=now.isoformat())

    expected = {i: case.refused(ctx) for i, case in enumerate(CASES)}
    for name, summary in (("import_events()", rpc_summary), ("Python importer", task_summary)):
        outcome = {i: None for i in range(len(CASES))} | {e["index"]: e["error"] for e in summary["errors"]}
        wrong = [
            f"{CASES[i].name}: expected {expected[i]!r}, got {outcome[i]!r}"
            for i in expected
            if outcome[i] != expected[i]
        ]
        assert not wrong, f"{name} disagrees with the table:\n" + "\n".join(wrong)
    accepted = sum(1 for reason in expected.values() if reason is None)
    assert rpc_summary == task_summary
    assert (rpc_summary["inserted"], rpc_summary["duplicates"]) == (accepted, 0)
