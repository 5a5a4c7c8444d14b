"""The health checks, each answering within a bounded time and reporting one line.

- database: reachable with the engine's own login, every migration of this code applied;
- broker: reachable;
- workers: at least one worker answers a remote-control ping and consumes the engine's queue;
- scans: per configured rule, when it was last scanned and fully scanned, and whether either is
  overdue (more than OVERDUE_FACTOR intervals ago: one late beat is tolerated, two are not).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from celery import Celery
from kombu.utils.url import maybe_sanitize_url

from events_schema.db import DatabaseUnavailable, connect
from events_schema.migrate import MigrationError, discover
from events_schema.queries import QueryFolder
from events_schema.settings import Settings
from worker.database import act_as_service_role
from worker.scan.shards import Shard, state_key

query = QueryFolder(Path(__file__).resolve().parent / "sql")
OVERDUE_FACTOR = 2
# Once one worker of the queue answered: how long the others have to answer too.
WORKERS_GRACE_SECONDS = 0.5


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, **self.data}


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _ago(age: timedelta) -> str:
    minutes = age.total_seconds() / 60
    return f"{minutes:.0f} min" if abs(minutes) < 120 else f"{minutes / 60:.1f} h"


def database(conn: psycopg.Connection) -> Check:
    """Every migration this code ships is applied (the database may know newer ones)."""
    try:
        applied = {row[0] for row in conn.execute(query("health_applied_migrations"))}
        shipped = [m.version for m in discover()]
    except (psycopg.Error, MigrationError) as exc:
        conn.rollback()
        return Check("database", False, f"cannot read the applied migrations: {_first_line(exc)}")
    pending = [v for v in shipped if v not in applied]
    who = f"reachable as {conn.info.user}"
    data = {"user": conn.info.user, "pending": pending}
    if pending:
        return Check("database", False, f"{who}; {len(pending)} migration(s) pending: {', '.join(pending)}", data)
    return Check("database", True, f"{who}; {len(shipped)} of {len(shipped)} migrations applied", data)


def scans(conn: psycopg.Connection, settings: Settings, now: datetime) -> list[Check]:
    """One check per configured rule: its last scan and last full scan against their intervals."""
    rules = [rule.name for rule in settings.nudge_rules]
    # A sharded rule (SCAN_SHARDS) is as late as its latest shard, and never scanned while one is.
    count = settings.scan_shards
    keys = {rule: [state_key(rule, Shard(i, count)) for i in range(count)] for rule in rules}
    with conn.transaction():
        act_as_service_role(conn)
        found = {
            row[0]: row[1:]
            for row in conn.execute(query("health_scan_state"), {"rules": [k for ks in keys.values() for k in ks]})
        }
    state = {
        rule: (min(found[k][0] for k in ks), min(found[k][1] for k in ks))
        for rule, ks in keys.items()
        if all(k in found for k in ks)
    }
    every = timedelta(seconds=settings.scan_interval_seconds)
    reconcile = timedelta(hours=settings.reconcile_interval_hours)
    checks = []
    for rule in rules:
        if rule not in state:
            checks.append(Check(f"scan {rule}", False, "never scanned", {"rule": rule, "last_scan": None}))
            continue
        last, last_full = state[rule]
        age, full_age = now - last, now - last_full
        problems = []
        if age > OVERDUE_FACTOR * every:
            problems.append(f"overdue: expected every {_ago(every)}")
        if full_age > OVERDUE_FACTOR * reconcile:
            problems.append(f"reconciliation overdue: expected every {_ago(reconcile)}")
        if age < timedelta(0):
            problems.append("the last scan's instant is ahead of this clock")
        detail = f"last scan {last:%Y-%m-%d %H:%M} UTC ({_ago(age)} ago), last full scan {_ago(full_age)} ago"
        checks.append(
            Check(
                f"scan {rule}",
                not problems,
                detail + "".join(f"; {p}" for p in problems),
                {
                    "rule": rule,
                    "last_scan": last.isoformat(),
                    "last_full_scan": last_full.isoformat(),
                    "seconds_since_scan": round(age.total_seconds()),
                    "overdue": bool(problems),
                },
            )
        )
    return checks


def delivery(conn: psycopg.Connection, settings: Settings, now: datetime) -> Check:
    """The push provider's settings work, and the dispatcher caught up recently (not paused for long)."""
    from worker.delivery.dispatcher import read_state
    from worker.delivery.providers import DeliveryConfigError, make_provider

    provider = settings.delivery_provider
    if provider == "none":
        return Check("delivery", True, "provider none: nudges are not pushed (the app reads them over Realtime)")
    try:
        make_provider(settings)
    except DeliveryConfigError as exc:
        return Check("delivery", False, str(exc), {"provider": provider})
    with conn.transaction():
        state = read_state(conn)
    data: dict[str, Any] = {"provider": provider, "caught_up_at": None, "lag_seconds": None}
    if state.caught_up_at is None:
        return Check("delivery", False, f"{provider}: no pass yet (is deliver_nudges on the beat?)", data)
    lag = now - state.caught_up_at
    data.update(caught_up_at=state.caught_up_at.isoformat(), lag_seconds=round(lag.total_seconds(), 1))
    limit = timedelta(seconds=OVERDUE_FACTOR * (settings.delivery_interval_seconds + settings.delivery_pass_seconds))
    detail = f"{provider}: caught up {_ago(lag)} ago"
    if state.paused_until is not None and state.paused_until > now:
        detail += f"; paused until {state.paused_until:%H:%M:%S} UTC: {state.pause_reason}"
    if lag > limit:
        detail += f"; behind: expected to catch up every {_ago(limit)}"
    return Check("delivery", lag <= limit, detail, data)


def database_checks(url: str, settings: Settings, now: datetime, timeout: float) -> list[Check]:
    try:
        conn = connect(url, autocommit=True, connect_timeout=max(1, round(timeout)))
    except DatabaseUnavailable as exc:
        return [
            Check("database", False, _first_line(exc), {"reachable": False}),
            Check("scans", False, "not checked: the database is unreachable"),
        ]
    with conn:
        checks = [database(conn)]
        try:
            checks += scans(conn, settings, now)
        except psycopg.Error as exc:
            checks.append(Check("scans", False, f"cannot read the scan state: {_first_line(exc)}"))
        try:
            checks.append(delivery(conn, settings, now))
        except psycopg.Error as exc:
            checks.append(Check("delivery", False, f"cannot read the dispatcher's state: {_first_line(exc)}"))
        return checks


def broker(app: Celery, timeout: float) -> Check:
    url = maybe_sanitize_url(app.conf.broker_url)
    try:
        with app.connection_for_write() as conn:
            # kombu takes float seconds; celery-types' stub says int.
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)  # type: ignore[arg-type]
    except Exception as exc:  # any transport's failure to connect, reported as one line  # noqa: BLE001
        return Check("broker", False, f"{url} unreachable: {_first_line(exc)}", {"url": url, "reachable": False})
    return Check("broker", True, f"{url} reachable", {"url": url})


class _Answered(Exception):
    """A worker consuming the queue answered: stop waiting for the others."""


def _consumers(app: Celery, queue: str, timeout: float, stop_at_first: bool) -> set[str]:
    """Workers consuming `queue` among those answering `active_queues`.

    Celery's broadcast waits `timeout` past the last reply, as it cannot know how many workers
    there are; with `stop_at_first` the wait ends at the first reply from a consumer of `queue`.
    """
    found: set[str] = set()

    def on_reply(reply: dict[str, list[dict[str, Any]]]) -> None:
        for name, queues in reply.items():
            if any(q.get("name") == queue for q in queues):
                found.add(name)
                if stop_at_first:
                    raise _Answered

    with contextlib.suppress(_Answered):
        app.control.broadcast("active_queues", reply=True, timeout=timeout, callback=on_reply)
    return found


def workers(app: Celery, queue: str, timeout: float, grace: float = WORKERS_GRACE_SECONDS) -> Check:
    """Workers that answer within `timeout` and consume `queue` (others on the broker do not count).

    Returns as soon as one such worker answered, plus a second round of at most about `grace`
    seconds in which the other live workers answer too (to name them all), not after `timeout`.
    """
    consuming = sorted(_consumers(app, queue, timeout, stop_at_first=True))
    if consuming:
        consuming = sorted({*consuming, *_consumers(app, queue, min(grace, timeout), stop_at_first=False)})
    data = {"queue": queue, "workers": consuming}
    if not consuming:
        return Check("workers", False, f"no worker consuming queue {queue!r} answered within {timeout:g} s", data)
    return Check("workers", True, f"{len(consuming)} consuming queue {queue!r}: {', '.join(consuming)}", data)
