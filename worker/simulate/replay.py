"""Replay the engine's definitions over a window of the past, at every beat, without a scan per beat.

The database gives, per rule, each user's episodes that are due somewhere in the window (one
sort of the log with a window function: simulate_episodes.sql) and, per time zone, the local time
at every beat (simulate_zones.sql). A user's decisions then follow from their episodes alone:
the earliest (beat, rule) at which an undecided episode is due, outside the cool-down and outside
quiet hours, is the next nudge; it starts a cool-down and settles its episode; repeat. That is
what the live scan at every beat decides, since each scan decides each due user the same way
(opt-out, episode, cool-down, quiet hours, cap, holdout arm: docs/engine.md) and rules run in
configuration order. Users are independent of each other, so they stream through in user order
with bounded memory; only NUDGE_MAX_PER_SCAN ties them together, and then every due user's
episodes are held and the beats are walked in order, each beat's candidates in the scan's order.

Read only: one READ ONLY transaction (a replica or a restored copy will do); nothing is written.
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from events_schema.errors import CommandError
from events_schema.queries import QueryFolder
from events_schema.settings import NudgeRule
from worker.database import act_as_service_role
from worker.simulate.policy import Policy

query = QueryFolder.beside(__file__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
# Why a due episode was not decided at the first beat it was due at (the scan's reasons).
REASONS = ("opted_out", "already_nudged", "cooldown", "quiet_hours", "rate_limited")
FETCH_ROWS = 20_000


def micros(at: datetime | timedelta) -> int:
    """Whole microseconds (PostgreSQL's resolution) since the epoch, or of a duration."""
    return (at - EPOCH if isinstance(at, datetime) else at) // MICRO


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Window:
    """The beats [start, end): start, start + every, ... (the live beat's instants)."""

    start: datetime
    end: datetime
    every: timedelta

    @property
    def beats(self) -> int:
        return ceil_div(micros(self.end - self.start), micros(self.every))

    @property
    def last_beat(self) -> datetime:
        return self.beat(self.beats - 1)

    def beat(self, k: int) -> datetime:
        return self.start + k * self.every

    def first_beat_at_or_after(self, at: datetime) -> int:
        """Index of the first beat at or after `at` (0 for anything before the window)."""
        return max(0, ceil_div(micros(at) - micros(self.start), micros(self.every)))


@dataclass(slots=True)
class Episode:
    rule: int  # index into the policy's rules
    last_active_at: datetime
    due_k: int  # first beat it is due at
    end_k: int  # first beat it is no longer the user's episode (activity resumed), or beats
    decided_before: bool  # decided (sent or withheld) before the window


@dataclass(slots=True)
class UserCase:
    user_id: uuid.UUID
    timezone: str
    opted_out: bool
    walk_at: int  # a full scan's walking order for a rule counting every type (micros)
    allowed_k: int  # first beat the cool-down of decisions before the window allows
    episodes: list[Episode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Sent:
    """One decision the replay writes: a nudge or, for a holdout's control arm, a withheld one."""

    user_id: uuid.UUID
    rule: str
    last_active_at: datetime
    at: datetime
    withheld: bool
    timezone: str
    beat: int


@dataclass(frozen=True, slots=True)
class Due:
    """An episode due in the window: when it first was, and why it was not decided then (None: it was)."""

    user_id: uuid.UUID
    rule: str
    beat: int  # its first due beat
    reason: str | None
    decided: bool  # decided within the window (at once or later)


@dataclass
class Outcome:
    """One user's replay: the decisions and the due episodes."""

    case: UserCase
    sent: list[Sent]
    due: list[Due]


def in_holdout(rule: NudgeRule, user_id: uuid.UUID) -> bool:
    """The arm (docs/engine.md): first 60 bits of sha256(salt/rule/user) mod 10,000 below the share."""
    if rule.holdout_buckets <= 0:
        return False
    digest = hashlib.sha256(f"{rule.holdout_salt}/{rule.name}/{user_id}".encode()).hexdigest()
    return int(digest[:15], 16) % 10000 < rule.holdout_buckets


class Replay:
    """One policy over one window, reading through `conn` (inside its read-only transaction)."""

    def __init__(
        self, conn: psycopg.Connection, policy: Policy, window: Window, local_us: dict[str, list[int]]
    ) -> None:
        self.conn = conn
        self.policy = policy
        self.window = window
        self.n = window.beats
        self.cool_steps = ceil_div(micros(policy.cooldown), micros(window.every))
        self.local_us = local_us
        self._next_open: dict[str, list[int]] = {}

    def next_open(self, timezone: str) -> list[int]:
        """Per beat k, the first beat at or after k outside quiet hours in this zone (n: none)."""
        if timezone not in self._next_open:
            quiet = self.policy.quiet_hours
            out = [self.n] * (self.n + 1)
            nxt = self.n
            if quiet is None:
                out = list(range(self.n + 1))
            else:
                start, end = (
                    t.hour * 3_600_000_000 + t.minute * 60_000_000 + t.second * 1_000_000 + t.microsecond for t in quiet
                )
                local = self.local_us[timezone]
                for k in range(self.n - 1, -1, -1):
                    t = local[k]
                    is_quiet = (t >= start or t < end) if start > end else (start <= t < end)
                    if not is_quiet:
                        nxt = k
                    out[k] = nxt
            self._next_open[timezone] = out
        return self._next_open[timezone]

    # -- reading -------------------------------------------------------------------------------

    def cases(self) -> Iterator[UserCase]:
        """Every user with an episode due in the window, in user order, all rules merged."""
        streams = []
        for index, rule in enumerate(self.policy.rules):
            cursor = self.conn.cursor(name=f"simulate_{self.policy.label}_{index}")
            cursor.itersize = FETCH_ROWS
            cursor.execute(
                query("simulate_episodes"),
                {
                    "rule": rule.name,
                    "event_types": rule.event_types,
                    "threshold": timedelta(hours=rule.threshold_hours),
                    "window_start": self.window.start,
                    "last_beat": self.window.last_beat,
                },
            )
            streams.append(_tagged(cursor, index))
        case: UserCase | None = None
        for user_id, index, row in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            if case is None or case.user_id != user_id:
                if case is not None and case.episodes:
                    yield case
                case = self._case(row)
            episode = self._episode(index, row)
            if episode is not None:
                case.episodes.append(episode)
        if case is not None and case.episodes:
            yield case

    def _case(self, row: tuple[Any, ...]) -> UserCase:
        user_id, _, _, timezone, opted_out, walk_at, decided_at, _ = row
        allowed = 0
        if decided_at is not None:
            allowed = self.window.first_beat_at_or_after(decided_at + self.policy.cooldown)
        return UserCase(user_id, timezone, opted_out, micros(walk_at), allowed)

    def _episode(self, index: int, row: tuple[Any, ...]) -> Episode | None:
        _, last_active_at, ends, _, _, _, _, decided_before = row
        threshold = timedelta(hours=self.policy.rules[index].threshold_hours)
        due_k = self.window.first_beat_at_or_after(last_active_at + threshold)
        end_k = self.n if ends is None else min(self.n, self.window.first_beat_at_or_after(ends))
        if due_k >= end_k:
            return None  # due only between two beats, or after the window
        return Episode(index, last_active_at, due_k, end_k, decided_before)

    # -- deciding ------------------------------------------------------------------------------

    def candidate(
        self, case: UserCase, decided: set[int], allowed_k: int, from_k: int, from_rule: int
    ) -> tuple[int, int, int] | None:
        """The user's next decision at or after (from_k, from_rule): (beat, rule, episode index)."""
        if case.opted_out:
            return None
        open_at = self.next_open(case.timezone)
        best: tuple[int, int, int] | None = None
        for i, ep in enumerate(case.episodes):
            if i in decided or ep.decided_before:
                continue
            k = max(ep.due_k, allowed_k, from_k)
            if k == from_k and ep.rule < from_rule:
                k += 1
            if k >= ep.end_k:
                continue
            k = open_at[k]
            if k >= ep.end_k:
                continue
            if best is None or (k, ep.rule) < best[:2]:
                best = (k, ep.rule, i)
        return best

    def run(self) -> Iterator[Outcome]:
        """Every user's outcome; in user order without a cap, in the order the cap settles them with one."""
        if not self.policy.max_per_scan:
            for case in self.cases():
                yield self._uncapped(case)
            return
        yield from self._capped(list(self.cases()))

    def _uncapped(self, case: UserCase) -> Outcome:
        decided: dict[int, int] = {}
        allowed, from_k, from_rule = case.allowed_k, 0, 0
        while (c := self.candidate(case, set(decided), allowed, from_k, from_rule)) is not None:
            k, rule, i = c
            decided[i] = k
            allowed, from_k, from_rule = k + self.cool_steps, k, rule + 1
        return self._outcome(case, decided)

    def _capped(self, cases: list[UserCase]) -> Iterator[Outcome]:
        """Beat by beat: each beat's candidates in the scan's order (rules in configuration order;
        within a rule, a full scan's walk), the first NUDGE_MAX_PER_SCAN decided, the rest held
        as rate_limited and decided again from the next beat."""
        cap = self.policy.max_per_scan
        decided: list[dict[int, int]] = [{} for _ in cases]
        allowed = [c.allowed_k for c in cases]
        heap: list[tuple[int, int, int, int, int, int]] = []

        def push(ci: int, from_k: int, from_rule: int) -> None:
            c = self.candidate(cases[ci], set(decided[ci]), allowed[ci], from_k, from_rule)
            if c is not None:
                k, rule, i = c
                walk = 0 if self.policy.rules[rule].event_types else cases[ci].walk_at
                heapq.heappush(heap, (k, rule, walk, cases[ci].user_id.int, ci, i))

        for ci in range(len(cases)):
            push(ci, 0, 0)
        beat, budget = -1, cap
        while heap:
            k, rule, _, _, ci, i = heapq.heappop(heap)
            if k != beat:
                beat, budget = k, cap
            if budget > 0:
                budget -= 1
                decided[ci][i] = k
                allowed[ci] = k + self.cool_steps
                push(ci, k, rule + 1)
            else:
                push(ci, k + 1, 0)
        for ci, case in enumerate(cases):
            yield self._outcome(case, decided[ci])

    def _outcome(self, case: UserCase, decided: dict[int, int]) -> Outcome:
        rules = self.policy.rules
        visible = sorted((k, case.episodes[i].rule) for i, k in decided.items())
        sent = [
            Sent(
                case.user_id,
                rules[ep.rule].name,
                ep.last_active_at,
                self.window.beat(k),
                in_holdout(rules[ep.rule], case.user_id),
                case.timezone,
                k,
            )
            for i, k in sorted(decided.items(), key=lambda item: item[1])
            for ep in (case.episodes[i],)
        ]
        due = []
        open_at = self.next_open(case.timezone)
        for i, ep in enumerate(case.episodes):
            first = ep.due_k
            reason: str | None
            if case.opted_out:
                reason = "opted_out"
            elif ep.decided_before:
                reason = "already_nudged"
            elif decided.get(i) == first:
                reason = None
            elif first < case.allowed_k or any(
                (j < first or (j == first and r < ep.rule)) and first - j < self.cool_steps for j, r in visible
            ):
                reason = "cooldown"
            elif open_at[first] != first:
                reason = "quiet_hours"
            else:
                reason = "rate_limited"
            due.append(Due(case.user_id, rules[ep.rule].name, first, reason, i in decided))
        return Outcome(case, sent, due)


def _tagged(rows: Iterator[tuple[Any, ...]], index: int) -> Iterator[tuple[Any, int, tuple[Any, ...]]]:
    """(user id, rule index, row): the merge key of one rule's stream."""
    for row in rows:
        yield row[0], index, row


def check_data(conn: psycopg.Connection, window: Window) -> None:
    """A window with nothing to replay is an error that says where the data is."""
    params = {"window_start": window.start, "last_beat": window.last_beat}
    row = conn.execute(query("simulate_data"), params).fetchone()
    assert row is not None
    users, active = row
    span = f"[{window.start.isoformat()}, {window.end.isoformat()})"
    if not users:
        raise CommandError(f"no data: no user had signed up by the window's last beat ({span})")
    if not active:
        first, last = conn.execute(query("simulate_span")).fetchone() or (None, None)
        where = (
            f"the log's activity runs from {first.isoformat()} to {last.isoformat()}" if first else "the log has none"
        )
        raise CommandError(f"no data: no activity within the window {span}; {where}")


def local_times(conn: psycopg.Connection, window: Window) -> dict[str, list[int]]:
    rows = conn.execute(
        query("simulate_zones"), {"window_start": window.start, "step": window.every, "beats": window.beats}
    ).fetchall()
    return {tz: list(values) for tz, values in rows}


def begin_read_only(conn: psycopg.Connection) -> None:
    """The replay's one transaction: read only (a hot standby accepts it), as the service role."""
    conn.execute("set transaction read only")
    act_as_service_role(conn)
    conn.execute("set local jit = off")


def decisions(conn: psycopg.Connection, policy: Policy, window: Window) -> list[Sent]:
    """Every decision the policy makes over the window, in (instant, user) order: what the live
    engine run at every beat would write (the exactness tests compare the two)."""
    with conn.transaction():
        begin_read_only(conn)
        replay = Replay(conn, policy, window, local_times(conn, window))
        sent = [s for outcome in replay.run() for s in outcome.sent]
    return sorted(sent, key=lambda s: (s.at, s.user_id, s.rule))
