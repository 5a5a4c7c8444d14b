"""A scan's lease on a rule (or one shard of it): a row in `nudge_scan_leases`, taken, renewed by
each batch and released, so at most one scan decides a rule's users at a time.

Leases know nothing of the scan's decisions: the scan (scanner.py) holds one, and a sharded scan's
fan-out reserves every shard's lease for the task that will run it (`reserve`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from events_schema.queries import QueryFolder
from events_schema.settings import get_settings
from worker.database import act_as_service_role, connection
from worker.scan.rules import select_rules
from worker.scan.shards import Shard, state_key

query = QueryFolder.beside(__file__)

logger = logging.getLogger(__name__)

# How often a scan looks again at a lease another scan holds.
LEASE_POLL_SECONDS = 0.5


class LeaseLost(RuntimeError):
    """Another scan took over this scan's lease after it expired (a batch outlasted the lease)."""


@dataclass(frozen=True)
class Lease:
    """One scan's hold on its rules' leases (`nudge_scan_leases`): a row, not a session lock, so
    neither a pooler nor a crash can leak it. Times are Python's clock, as every decision's."""

    scan_id: str
    owner: str
    ttl: timedelta

    def _params(self, rule: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"rule": rule, "scan_id": self.scan_id, "owner": self.owner, "now": now, "expires_at": now + self.ttl}

    def try_take(self, conn: psycopg.Connection, rule: str) -> bool:
        """One attempt, no waiting: whether this owner holds the lease now."""
        with conn.transaction():
            act_as_service_role(conn)
            return conn.execute(query("scan_lease_take"), self._params(rule)).fetchone() is not None

    def take(self, conn: psycopg.Connection, rule: str) -> str | None:
        """Take the lease, waiting while another scan holds it: up to one lease period, since a
        dead holder's lease has expired by then. Returns None, or why this scan gives up (the
        holder kept renewing: it is alive and doing the work). Waits are counted, not timed,
        so a frozen clock (tests) cannot make them endless."""
        poll = min(LEASE_POLL_SECONDS, self.ttl.total_seconds() / 4)
        for attempt in range(math.ceil(self.ttl.total_seconds() / poll) + 2):
            if attempt:
                time.sleep(poll)
            if self.try_take(conn, rule):
                return None
        with conn.transaction():
            act_as_service_role(conn)
            holder = conn.execute(query("scan_lease_holder"), {"rule": rule}).fetchone()
        who = f"{holder[0]}, lease until {holder[1].isoformat()}" if holder else "it has just let go"
        return f"another scan holds the lease on rule {rule} and keeps renewing it ({who}); exiting"

    def renew(self, conn: psycopg.Connection, rule: str) -> None:
        """Inside a batch's transaction, first: extend the lease, or stop if it was taken over."""
        if not conn.execute(query("scan_lease_renew"), self._params(rule)).fetchone():
            raise LeaseLost(
                f"another scan took over the lease on rule {rule} after it expired "
                f"(a batch took longer than SCAN_LEASE_SECONDS={self.ttl.total_seconds():g}); stopped"
            )

    def release(self, conn: psycopg.Connection, rule: str) -> None:
        """Free the lease; with the connection gone, leave it to expire rather than hide the
        error that ended the scan."""
        try:
            with conn.transaction():
                act_as_service_role(conn)
                conn.execute(query("scan_lease_release"), {"rule": rule, "scan_id": self.scan_id})
        except psycopg.OperationalError as exc:
            logger.warning(
                "scan %s: could not free the lease on rule %s (%s); it expires by itself",
                self.scan_id,
                rule,
                str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
            )


def reserve(rule_names: list[str] | None, owners: list[str], scan_id: str) -> str | None:
    """Before a sharded scan's tasks are sent: take every (rule, shard) lease for the task that
    will run that shard (`owners[i]`, its task id), without waiting. Returns None, or why the scan
    must not start: a shard of the previous scan still holds its lease (running, or queued and not
    yet expired), and then nothing is kept. A shard task takes its own lease back at once."""
    settings = get_settings()
    ttl = timedelta(seconds=settings.scan_lease_seconds)
    count = len(owners)
    taken: list[tuple[Lease, str]] = []
    with connection() as conn:
        conn.rollback()
        conn.autocommit = True
        try:
            for rule in select_rules(settings, rule_names):
                for index, owner in enumerate(owners):
                    lease, key = Lease(scan_id, owner, ttl), state_key(rule.name, Shard(index, count))
                    if not lease.try_take(conn, key):
                        for held, held_key in taken:
                            held.release(conn, held_key)
                        return f"a shard of the previous scan still holds the lease on {key}; not started"
                    taken.append((lease, key))
        finally:
            conn.autocommit = False
    return None
