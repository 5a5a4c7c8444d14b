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
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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


# A due episode not decided at the first beat it was due at: (rule, that beat, the first reason).
Due = tuple[str, int, str]


@dataclass
class Outcome:
    """One user's replay: the decisions, and the due episodes held or suppressed at first."""

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
    """One policy's decisions over one window, given each user's episodes (read_cases)."""

    def __init__(self, policy: Policy, window: Window, local_us: dict[str, list[int]]) -> None:
        self.policy = policy
        self.window = window
        self.n = window.beats
        self.cool_steps = ceil_div(micros(policy.cooldown), micros(window.every))
        self.local_us = local_us
        self._next_open: dict[str, list[int]] = {}
        self._next_quiet: dict[str, list[int]] = {}
        self.names = [r.name for r in policy.rules]
        self.held_out = [r.holdout_buckets > 0 for r in policy.rules]
        self.beats = [window.beat(k) for k in range(self.n)]

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

    # -- deciding ------------------------------------------------------------------------------

    def candidate(
        self, case: UserCase, decided: Container[int], allowed_k: int, from_k: int, from_rule: int
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

    def decide(self, case: UserCase) -> Outcome:
        """One user's decisions on their own (no cap): the next is always the earliest possible."""
        if len(self.policy.rules) == 1:
            return self._decide_one_rule(case)
        decided: dict[int, int] = {}
        allowed, from_k, from_rule = case.allowed_k, 0, 0
        while (c := self.candidate(case, decided, allowed, from_k, from_rule)) is not None:
            k, rule, i = c
            decided[i] = k
            allowed, from_k, from_rule = k + self.cool_steps, k, rule + 1
        return self._outcome(case, decided)

    def _decide_one_rule(self, case: UserCase) -> Outcome:
        """decide() for a policy of one rule: its episodes follow each other in time (read_cases
        gives them in order), so one pass decides them; the same result, without the search."""
        name, beats, open_at = self.names[0], self.beats, self.next_open(case.timezone)
        held_out = self.held_out[0] and in_holdout(self.policy.rules[0], case.user_id)
        allowed, cool = case.allowed_k, self.cool_steps
        sent: list[Sent] = []
        due: list[Due] = []
        for ep in case.episodes:
            first = ep.due_k
            if case.opted_out or ep.decided_before:
                due.append((name, first, "opted_out" if case.opted_out else "already_nudged"))
                continue
            k = max(first, allowed)
            if k < ep.end_k:
                k = open_at[k]
            if k != first:
                reason = "cooldown" if first < allowed else "quiet_hours" if open_at[first] != first else "rate_limited"
                due.append((name, first, reason))
            if k < ep.end_k:
                sent.append(Sent(case.user_id, name, ep.last_active_at, beats[k], held_out, case.timezone, k))
                allowed = k + cool
        return Outcome(case, sent, due)

    def next_quiet(self, timezone: str) -> list[int]:
        """Per beat k, the first beat at or after k inside quiet hours in this zone (n: none)."""
        if timezone not in self._next_quiet:
            open_at = self.next_open(timezone)
            out, nxt = [self.n] * (self.n + 1), self.n
            for k in range(self.n - 1, -1, -1):
                if open_at[k] != k:
                    nxt = k
                out[k] = nxt
            self._next_quiet[timezone] = out
        return self._next_quiet[timezone]

    def settle(self, cases: list[UserCase]) -> Iterator[Outcome]:
        """Beat by beat, as the scans decide under NUDGE_MAX_PER_SCAN: each beat's due users in the
        scan's order (rules in configuration order; within a rule, a full scan's walk: last active,
        then user id), the first NUDGE_MAX_PER_SCAN decided, the rest held for the next beat.

        A user's next decision waits on a timeline until its beat, then in a queue in the scan's
        order until the budget reaches it. A user waiting in the queue is looked at again only when
        their situation changes (quiet hours start, the lapse ends, an earlier rule's episode
        becomes due: a wake-up on the timeline), never once per beat they wait."""
        cap, n, cool = self.policy.max_per_scan, self.n, self.cool_steps
        rules = self.policy.rules
        decided: list[dict[int, int]] = [{} for _ in cases]
        allowed = [c.allowed_k for c in cases]
        version = [0] * len(cases)
        # (beat, user, version, rule, episode): the user's next decision (rule >= 0) or a wake-up (-1).
        timeline: list[tuple[int, int, int, int, int]] = []
        # (rule, walk, user id, user, episode, version): due users waiting for the budget.
        queue: list[tuple[int, int, int, int, int, int]] = []

        def schedule(ci: int, from_k: int, from_rule: int) -> None:
            version[ci] += 1
            c = self.candidate(cases[ci], decided[ci], allowed[ci], from_k, from_rule)
            if c is not None:
                heapq.heappush(timeline, (c[0], ci, version[ci], c[1], c[2]))

        def enqueue(k: int, ci: int, rule: int, i: int) -> None:
            case = cases[ci]
            walk = 0 if rules[rule].event_types else case.walk_at
            heapq.heappush(queue, (rule, walk, case.user_id.int, ci, i, version[ci]))
            wake = min(case.episodes[i].end_k, self.next_quiet(case.timezone)[k])
            for j, ep in enumerate(case.episodes):
                if ep.rule < rule and k < ep.due_k < wake and j not in decided[ci] and not ep.decided_before:
                    wake = ep.due_k
            if wake < n:
                heapq.heappush(timeline, (wake, ci, version[ci], -1, -1))

        def arrivals(k: int) -> None:
            while timeline and timeline[0][0] == k:
                _, ci, ver, rule, i = heapq.heappop(timeline)
                if ver != version[ci]:
                    continue
                if rule >= 0:
                    enqueue(k, ci, rule, i)
                else:
                    schedule(ci, k, 0)  # woken: decide afresh from this beat

        for ci in range(len(cases)):
            schedule(ci, 0, 0)
        k = -1
        while timeline or queue:
            k = k + 1 if queue else timeline[0][0]
            if timeline and timeline[0][0] < k:
                k = timeline[0][0]
            if k >= n:
                break  # the window is over; whoever still waits was held to its end
            arrivals(k)
            budget = cap
            while queue and budget > 0:
                rule, _, _, ci, i, ver = heapq.heappop(queue)
                if ver != version[ci]:
                    continue
                budget -= 1
                decided[ci][i] = k
                allowed[ci] = k + cool
                schedule(ci, k, rule + 1)
                arrivals(k)  # no cool-down: a later rule's episode may be due at this same beat
        for ci, case in enumerate(cases):
            yield self._outcome(case, decided[ci])

    def _outcome(self, case: UserCase, decided: dict[int, int]) -> Outcome:
        rules, names, beats = self.policy.rules, self.names, self.beats
        sent = [
            Sent(
                case.user_id,
                names[ep.rule],
                ep.last_active_at,
                beats[k],
                self.held_out[ep.rule] and in_holdout(rules[ep.rule], case.user_id),
                case.timezone,
                k,
            )
            for i, k in sorted(decided.items(), key=lambda item: item[1])
            for ep in (case.episodes[i],)
        ]
        due = []
        for i, ep in enumerate(case.episodes):
            first = ep.due_k
            if decided.get(i) == first and not case.opted_out and not ep.decided_before:
                continue  # decided at once
            due.append((names[ep.rule], first, self._reason(case, ep, first, decided)))
        return Outcome(case, sent, due)

    def _reason(self, case: UserCase, ep: Episode, first: int, decided: dict[int, int]) -> str:
        """Why a due episode was not decided at its first due beat: the scan's first reason."""
        if case.opted_out:
            return "opted_out"
        if ep.decided_before:
            return "already_nudged"
        if first < case.allowed_k or any(
            (j < first or (j == first and case.episodes[i].rule < ep.rule)) and first - j < self.cool_steps
            for i, j in decided.items()
        ):
            return "cooldown"
        if self.next_open(case.timezone)[first] != first:
            return "quiet_hours"
        return "rate_limited"


def read_cases(
    conn: psycopg.Connection, policies: list[Policy], window: Window
) -> Iterator[tuple[uuid.UUID, list[UserCase | None]]]:
    """Per user with an episode due in the window (in user order), each policy's case (None: no
    episode due under it). One query per set of counted event types, shared by every rule of
    every policy that counts them; the streams are merged by user."""
    groups: dict[tuple[str, ...] | None, list[tuple[int, int, NudgeRule]]] = {}
    keys: list[tuple[int, int]] = []  # key -> (policy, rule index)
    for p, policy in enumerate(policies):
        for r, rule in enumerate(policy.rules):
            types = tuple(rule.event_types) if rule.event_types is not None else None
            groups.setdefault(types, []).append((len(keys), r, rule))
            keys.append((p, r))
    step = micros(window.every)
    streams = []
    for g, (types, rules) in enumerate(groups.items()):
        cursor = conn.cursor(name=f"simulate_episodes_{g}")
        cursor.itersize = FETCH_ROWS
        thresholds = [timedelta(hours=rule.threshold_hours) for _, _, rule in rules]
        cursor.execute(
            query("simulate_episodes"),
            {
                "event_types": list(types) if types is not None else None,
                "rule_keys": [key for key, _, _ in rules],
                "rule_names": [rule.name for _, _, rule in rules],
                "thresholds": thresholds,
                "thresholds_us": [micros(t) for t in thresholds],
                "shortest": min(thresholds),
                "window_start": window.start,
                "last_beat": window.last_beat,
                "step_us": step,
                "beats": window.beats,
            },
        )
        streams.append(cursor)
    cooldowns = [micros(p.cooldown) for p in policies]
    rows = heapq.merge(*streams, key=lambda row: (row[0], row[1])) if len(streams) > 1 else streams[0]
    user: uuid.UUID | None = None
    cases: list[UserCase | None] = [None] * len(policies)
    for user_id, key, last_active_at, due_k, end_k, timezone, opted_out, walk_us, decided_off, decided_before in rows:
        if user_id != user:
            if user is not None:
                yield user, cases
            user, cases = user_id, [None] * len(policies)
        p, r = keys[key]
        case = cases[p]
        if case is None:
            allowed = 0 if decided_off is None else max(0, ceil_div(decided_off + cooldowns[p], step))
            case = cases[p] = UserCase(user_id, timezone, opted_out, walk_us, allowed)
        case.episodes.append(Episode(r, last_active_at, due_k, end_k, decided_before))
    if user is not None:
        yield user, cases


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
    """Every decision the policy makes over the window, in (instant, user, rule) order: what the
    live engine run at every beat would write (the exactness tests compare the two)."""
    with conn.transaction():
        begin_read_only(conn)
        replay = Replay(policy, window, local_times(conn, window))
        cases = [cs[0] for _, cs in read_cases(conn, [policy], window) if cs[0] is not None]
        outcomes = list(replay.settle(cases)) if policy.max_per_scan else [replay.decide(c) for c in cases]
    return sorted((s for o in outcomes for s in o.sent), key=lambda s: (s.at, s.user_id, s.rule))
