"""`python -m events_schema audit`: check RLS from the outside, as PostgREST applies it, and roll back.

One connection as the DATABASE_URL role (the migrating role; `postgres` on Supabase) and one
transaction that is always rolled back, so nothing is left behind, not even after a crash: the
server aborts an open transaction when its connection goes. In it, that role creates throwaway users
(it may write `auth.users`; the API roles may not) and their events, some soft-deleted. Then every
check is one simulated request in a savepoint, exactly what PostgREST does after logging in as
`authenticator`: `set local role` to anon / authenticated / service_role and
`set_config('request.jwt.claims', ..., true)`. After SET ROLE, privileges and RLS are those of the
API role; the session role's ownership, superuser or BYPASSRLS no longer count (a clean database
passes and a deliberately broken policy is caught, which proves both). Each request's savepoint is
rolled back, so its writes, role and claims never reach the next check.

A second connection as `authenticator` could not see the uncommitted throwaway rows, and committing
them would break "leaves nothing behind": hence one connection.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
from psycopg import errors

from events_schema.cli_args import whole_number
from events_schema.cli_errors import keeping_status
from events_schema.db import connect, one_row
from events_schema.errors import CommandError
from events_schema.postgrest import API_ROLES, claims_for, request
from events_schema.queries import QueryFolder

query = QueryFolder.beside(__file__)

# Per throwaway user: (event_type, value, minutes ago, soft-deleted). Each user also gets a nudge
# from the engine (see _create_fixtures).
FIXTURE_EVENTS = (
    ("app_open", {"platform": "ios"}, 5, False),
    ("steps_import", {"steps": 8423, "source": "fitbit"}, 90, False),
    ("goal_complete", {"goal": "drink_water", "streak": 3}, 600, False),
    ("coach_message", {"direction": "to_coach", "length": 42}, 1500, True),
)


class AuditError(CommandError):
    """The audit cannot run here (exit 1)."""


@dataclass
class AuditReport:
    users: int
    checks: int = 0
    leaks: list[str] = field(default_factory=list)  # something allowed that the rules forbid
    refusals: list[str] = field(default_factory=list)  # something the rules allow that was refused

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.refusals

    def verdict(self) -> str:
        line = f"{self.users} users, {self.checks} checks, {len(self.leaks)} leaks"
        return line + (f", {len(self.refusals)} wrongly refused" if self.refusals else "")


@dataclass(frozen=True)
class Outcome:
    """What one request did: the ids it returned, or the SQLSTATE it failed with."""

    ids: frozenset[uuid.UUID]
    sqlstate: str | None = None

    def describe(self) -> str:
        return f"refused with {self.sqlstate}" if self.sqlstate else f"{len(self.ids)} rows"


def _attempt(conn: psycopg.Connection, role: str, claims: dict[str, Any], name: str, **params: Any) -> Outcome:
    """One statement as one PostgREST request, inside a savepoint that is always rolled back."""
    try:
        with conn.transaction(force_rollback=True), request(conn, role, claims):
            rows = conn.execute(query(name), params).fetchall()
            return Outcome(frozenset(row[0] for row in rows))
    except errors.Error as exc:
        return Outcome(frozenset(), exc.sqlstate)


@dataclass(frozen=True)
class Fixtures:
    users: list[uuid.UUID]
    visible: dict[uuid.UUID, frozenset[uuid.UUID]]  # each user's own non-deleted rows
    every: frozenset[uuid.UUID]  # every throwaway row, soft-deleted ones too
    tokens: dict[uuid.UUID, uuid.UUID]  # each user's one device token (public.device_tokens)


@dataclass
class _Auditor:
    conn: psycopg.Connection
    report: AuditReport
    fixtures: Fixtures
    reserved: list[str]

    def requests(self, role: str, claims: dict[str, Any]) -> Callable[..., Outcome]:
        """Send statements as `role` with `claims`, each as its own rolled-back request."""
        return partial(_attempt, self.conn, role, claims)

    def expect(self, ok: bool, problem: str, *, leak: bool = True) -> None:
        self.report.checks += 1
        if not ok:
            (self.report.leaks if leak else self.report.refusals).append(problem)

    def must_not(self, who: str, action: str, outcome: Outcome) -> None:
        """A forbidden write: refused, or touching no row."""
        self.expect(not outcome.ids, f"{who} could {action} ({outcome.describe()})")

    def must(self, who: str, action: str, outcome: Outcome) -> None:
        self.expect(len(outcome.ids) == 1, f"{who} could not {action} ({outcome.describe()})", leak=False)

    def reads(self, who: str, outcome: Outcome, expected: frozenset[uuid.UUID], what: str) -> None:
        """Exactly `expected`; rows missing count only when nothing leaked (a limit may cut them)."""
        extra, missing = outcome.ids - expected, expected - outcome.ids
        self.expect(not extra, f"{who} read rows beyond {what} ({len(extra)} seen)")
        self.expect(
            bool(extra) or (not missing and outcome.sqlstate is None),
            f"{who} could not read {what} ({outcome.describe()})",
            leak=False,
        )

    def user(self, number: int, user_id: uuid.UUID) -> None:
        who, claims = f"user {number} ({user_id})", claims_for("authenticated", user_id)
        other = self.fixtures.users[number % len(self.fixtures.users)]  # the next user, cyclically
        own, every = self.fixtures.visible[user_id], list(self.fixtures.every)
        attempt = self.requests("authenticated", claims)

        def insert(**overrides: Any) -> Outcome:
            params = {"user_id": user_id, "ahead": "0", "event_type": "app_open", "is_deleted": False}
            return attempt("audit_insert_event", **{**params, **overrides})

        # A limit of one more than the own rows is enough to expose any extra row.
        self.reads(who, attempt("audit_read_any", limit=len(own) + 1), own, "their own non-deleted rows")
        self.reads(who, attempt("audit_read_ids", ids=every), own, "their own non-deleted rows, by id")
        self.must(who, "log their own event", insert())
        self.must_not(who, "log an event for another user", insert(user_id=other))
        self.must_not(who, "log an event an hour ahead", insert(ahead="1 hour"))
        self.must_not(who, "log a soft-deleted event", insert(is_deleted=True))
        for event_type in self.reserved:
            self.must_not(who, f"log a reserved {event_type} event", insert(event_type=event_type))
        self.must_not(who, "update events", attempt("audit_update_ids", ids=every))
        self.must_not(who, "delete events", attempt("audit_delete_ids", ids=every))
        self.device_tokens(who, user_id, other, attempt)

    def device_tokens(self, who: str, user_id: uuid.UUID, other: uuid.UUID, attempt: Callable[..., Outcome]) -> None:
        """public.device_tokens: a user reads, registers, refreshes and removes only their own."""
        tokens = self.fixtures.tokens
        own, theirs, every = tokens[user_id], tokens[other], list(tokens.values())
        self.reads(who, attempt("audit_tokens_read", ids=every), frozenset({own}), "their own device token")
        self.must(who, "register a device token", attempt("audit_token_register", user_id=user_id))
        self.must_not(who, "register a device token for another user", attempt("audit_token_register", user_id=other))
        self.must(who, "refresh their device token", attempt("audit_tokens_update_ids", ids=[own]))
        self.must_not(who, "refresh another user's device token", attempt("audit_tokens_update_ids", ids=[theirs]))
        self.must(who, "remove their device token", attempt("audit_tokens_delete_ids", ids=[own]))
        self.must_not(who, "remove another user's device token", attempt("audit_tokens_delete_ids", ids=[theirs]))

    def anon(self) -> None:
        attempt, every = self.requests("anon", claims_for("anon")), list(self.fixtures.every)
        event = {"user_id": self.fixtures.users[0], "ahead": "0", "event_type": "app_open", "is_deleted": False}
        self.must_not("anon", "read events", attempt("audit_read_any", limit=1))
        self.must_not("anon", "log an event", attempt("audit_insert_event", **event))
        self.must_not("anon", "update events", attempt("audit_update_ids", ids=every))
        self.must_not("anon", "delete events", attempt("audit_delete_ids", ids=every))
        tokens = list(self.fixtures.tokens.values())
        self.must_not("anon", "read device tokens", attempt("audit_tokens_read", ids=tokens))
        self.must_not(
            "anon", "register a device token", attempt("audit_token_register", user_id=self.fixtures.users[0])
        )
        self.must_not("anon", "remove device tokens", attempt("audit_tokens_delete_ids", ids=tokens))

    def service_role(self) -> None:
        who, every = "service_role", self.fixtures.every
        attempt = self.requests("service_role", claims_for("service_role"))
        self.reads(who, attempt("audit_read_ids", ids=list(every)), every, "every row, soft-deleted too")
        system_event = {
            "user_id": self.fixtures.users[0],
            "ahead": "0",
            "event_type": self.reserved[0],
            "is_deleted": False,
        }
        self.must(who, "log a system event for a user", attempt("audit_insert_event", **system_event))
        one = [next(iter(every))]
        self.must(who, "update an event", attempt("audit_update_ids", ids=one))
        self.must(who, "delete an event", attempt("audit_delete_ids", ids=one))
        tokens = frozenset(self.fixtures.tokens.values())
        self.reads(who, attempt("audit_tokens_read", ids=list(tokens)), tokens, "every device token")
        self.must(who, "remove a dead device token", attempt("audit_tokens_delete_ids", ids=[next(iter(tokens))]))


def _create_fixtures(conn: psycopg.Connection, count: int) -> Fixtures:
    users = [uuid.uuid4() for _ in range(count)]
    try:
        private = [r[0] for r in conn.execute("select unnest(public.engagement_private_event_types())")]
    except errors.Error as exc:
        raise AuditError(
            f"cannot create the throwaway users and events as {conn.info.user}: "
            f"{_first_line(exc)}; run the audit as the migrating role"
        ) from exc
    rows = [
        (uuid.uuid4(), user, minutes, event_type, json.dumps(value), deleted)
        for user in users
        for event_type, value, minutes, deleted in FIXTURE_EVENTS
    ]
    # The engine's nudge: users read it but may never write one.
    rows += [
        (uuid.uuid4(), user, 30, "nudge_sent", json.dumps({"rule": "rls_audit", "user": str(user)}), False)
        for user in users
    ]
    # The engine's private events about the user (a holdout's withheld nudge, a shadow rule's
    # record): only the service role may read them, never the user they are about.
    rows += [
        (uuid.uuid4(), user, 20, event_type, json.dumps({"rule": "rls_audit", "user": str(user)}), False)
        for user in users
        for event_type in private
    ]
    ids, user_ids, minutes_ago, event_types, values, deleted = map(list, zip(*rows, strict=False))
    try:
        conn.execute(query("audit_create_users"), {"ids": users, "signed_up_at": datetime.now(UTC)})
        conn.execute(
            query("audit_create_events"),
            {
                "ids": ids,
                "user_ids": user_ids,
                "minutes_ago": minutes_ago,
                "event_types": event_types,
                "values": values,
                "deleted": deleted,
            },
        )
    except errors.Error as exc:
        raise AuditError(
            f"cannot create the throwaway users and events as {conn.info.user}: "
            f"{_first_line(exc)}; run the audit as the migrating role"
        ) from exc
    tokens = {user: uuid.uuid4() for user in users}
    try:
        conn.execute(query("audit_create_tokens"), {"ids": list(tokens.values()), "user_ids": list(tokens)})
    except errors.Error as exc:
        raise AuditError(f"cannot create the throwaway device tokens as {conn.info.user}: {_first_line(exc)}") from exc
    visible = {
        user: frozenset(r[0] for r in rows if r[1] == user and not r[5] and r[3] not in private) for user in users
    }
    return Fixtures(users, visible, frozenset(ids), tokens)


def _first_line(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary or str(exc)).strip().splitlines()[0]


def audit(url: str | None = None, users: int = 5) -> AuditReport:
    """Run every check for `users` throwaway users, anon and the service role; always rolls back."""
    if users < 2:
        raise AuditError("the audit needs at least 2 users, to try one user's access to another's rows")
    report = AuditReport(users=users)
    with connect(url, autocommit=True) as conn:
        migrated, usable = one_row(conn.execute(query("audit_preflight")))
        if not migrated:
            raise AuditError("the database is not migrated: run `python -m events_schema migrate` first")
        if missing := sorted(set(API_ROLES) - set(usable)):
            roles = ", ".join(missing)
            raise AuditError(f"{conn.info.user} cannot act as {roles} (SET ROLE) as PostgREST does")
        try:
            with conn.transaction(force_rollback=True):
                # As PostgREST's connections have it, whatever this role's own settings say.
                conn.execute("set local row_security = on")
                conn.execute("set local lock_timeout = '5s'")
                fixtures = _create_fixtures(conn, users)
                reserved = conn.execute("select unnest(public.engagement_reserved_event_types())").fetchall()
                auditor = _Auditor(conn, report, fixtures, [r[0] for r in reserved])
                for number, user_id in enumerate(fixtures.users, 1):
                    auditor.user(number, user_id)
                auditor.anon()
                auditor.service_role()
        except psycopg.Error as exc:
            raise AuditError(f"the audit failed: {_first_line(exc)}") from exc
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--users",
        type=whole_number(2),
        default=5,
        help="throwaway users (default 5, at least 2: one user's access to another's rows is tried)",
    )


def run(args: argparse.Namespace) -> int:
    report = audit(args.database_url, args.users)
    status = 0 if report.ok else 1
    with keeping_status(status):
        _print_report(report)
    return status


def _print_report(report: AuditReport) -> None:
    for leak in report.leaks:
        print(f"leak: {leak}")
    for refusal in report.refusals:
        print(f"wrongly refused: {refusal}")
    print(report.verdict())
