"""`python -m events_schema seed`: realistic demo users and events, deterministic, loaded with COPY.

Same seed, users, days and `now` give identical rows: profiles come from `random.Random(seed)`,
each user's events from a `Random` seeded by their profile, ids from those generators, and every
time is relative to `now`. `now` defaults to the current hour (UTC, rounded down), so reruns within
the hour match; `--now` pins it. Local hours go through the machine's time zone database, so two
machines agree as long as their tzdata does for the zones used.

With `--nudge-effect E` the engine's decisions are replayed over that history (seed/nudges.py) for
the configured NUDGE_RULES, and nudged users come back more often by E: demo data for the holdout
lift, with a known answer.

Users go into `auth.users`, whose INSERT trigger fills `public.engagement_users`. Where Supabase
Auth owns `auth.users` (a real project), fake accounts would mix with real sign-ups and could not
sign in, so seeding refuses unless `--into-auth` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TextIO
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors

from events_schema.cli_args import instant, whole_number
from events_schema.cli_errors import keeping_status
from events_schema.db import connect, one_row
from events_schema.errors import CommandError
from events_schema.progress import Progress
from events_schema.queries import QueryFolder
from events_schema.seed.nudges import EngineModel, NudgeTally
from events_schema.settings import get_settings

query = QueryFolder.beside(__file__)

DAY = 86400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Where users live, roughly weighted like a US-first English-language health app.
TIMEZONES = (
    ("America/New_York", 14),
    ("America/Chicago", 8),
    ("America/Denver", 3),
    ("America/Los_Angeles", 10),
    ("America/Toronto", 3),
    ("America/Mexico_City", 3),
    ("America/Sao_Paulo", 4),
    ("Europe/London", 8),
    ("Europe/Berlin", 6),
    ("Europe/Paris", 5),
    ("Europe/Madrid", 3),
    ("Africa/Lagos", 2),
    ("Africa/Johannesburg", 2),
    ("Asia/Dubai", 2),
    ("Asia/Kolkata", 6),
    ("Asia/Kathmandu", 1),
    ("Asia/Singapore", 3),
    ("Asia/Shanghai", 2),
    ("Asia/Tokyo", 4),
    ("Australia/Adelaide", 1),
    ("Australia/Sydney", 3),
    ("Pacific/Auckland", 1),
)
# App opens by local hour: commute, lunch and evening peaks on weekdays; later, flatter weekends.
WEEKDAY_HOURS = (1, 0.5, 0.3, 0.2, 0.3, 1, 4, 8, 7, 4, 3, 3, 6, 5, 3, 3, 3, 4, 6, 7, 8, 8, 5, 2)
WEEKEND_HOURS = (2, 1, 0.5, 0.3, 0.2, 0.4, 1, 2.5, 5, 7, 8, 7, 6, 5, 4, 4, 4, 5, 6, 6, 7, 7, 5, 3)
SOURCES = (("fitbit", 35), ("apple_health", 35), ("google_fit", 15), ("garmin", 15))
GOALS = ("walk_10k_steps", "drink_water", "meditate_10_min", "sleep_by_11pm", "log_meals", "stretch")
APP_VERSIONS = ("3.4.2", "3.5.0", "3.5.1")
SHARE_WITH_TIMEZONE = 0.88  # the rest never sent one: the engine must cope without
SHARE_OPTED_OUT = 0.04
SHARE_SIGNED_UP_IN_PERIOD = 0.25
SHARE_WITH_WEARABLE = 0.55
SHARE_DRIFTING_OFF = 0.2  # of users who use the app at all
DRIFT_SECONDS = 7 * DAY  # activity fades over the week before a user goes quiet
SHARE_SOFT_DELETED = 0.003
USERS_PER_COPY = 5000

COPY_USERS = "copy auth.users (id, email, created_at, updated_at, raw_user_meta_data) from stdin"
COPY_EVENTS = 'copy public.engagement_events (id, user_id, "timestamp", event_type, value, is_deleted) from stdin'
# Inserts leave the engine's summaries to the fold (migration 20261205100000): fold the seeded
# rows at once, so the summaries hold them before they are analysed.
FOLD = "select public.fold_engagement_summaries()"
ANALYZE = "analyze public.engagement_events, public.engagement_users, public.engagement_last_activity"


@dataclass(frozen=True)
class Segment:
    """An engagement level: chance of using the app on a day, sessions then, extras per session."""

    name: str
    share: float
    p_active: float
    sessions: float
    p_goal: float
    p_coach: float


SEGMENTS = (
    Segment("power", 0.15, 0.9, 3.0, 0.55, 0.25),
    Segment("regular", 0.45, 0.6, 1.8, 0.35, 0.12),
    Segment("casual", 0.30, 0.25, 1.2, 0.2, 0.05),
    Segment("dormant", 0.10, 0.02, 1.0, 0.1, 0.02),
)


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    email: str
    created: int  # epoch seconds
    timezone: str  # where the user lives, whether or not the app recorded it in `meta`
    meta: dict[str, str]
    p_active: float
    weekend_factor: float
    sessions: float
    p_goal: float
    p_coach: float
    churn: int | None  # when the user goes quiet for good
    source: str | None  # wearable
    steps: int
    weekend_steps: float
    app_open_value: str
    goals: tuple[str, ...]
    event_seed: int


# (id, epoch seconds, event_type, value as JSON text, is_deleted)
Event = tuple[str, int, str, str, bool]


@dataclass(frozen=True)
class SeedReport:
    users: int
    events: int
    days: int
    seed: int
    now: datetime
    seconds: float
    quiet_48h: int  # users with no (non-deleted) event in the last 48 h: work for the inactivity scan
    opted_out: int
    without_timezone: int
    nudges: NudgeTally | None = None  # with --nudge-effect: the replayed decisions

    def summary(self) -> str:
        line = (
            f"seeded {self.users} users and {self.events} events over {self.days} days ending "
            f"{self.now:%Y-%m-%dT%H:%M:%SZ} (seed {self.seed}) in {self.seconds:.1f} s; "
            f"{self.quiet_48h} users quiet for 48 h or more, {self.opted_out} opted out of nudges, "
            f"{self.without_timezone} without a time zone"
        )
        if self.nudges is not None:
            line += (
                f"; replayed the engine: {self.nudges.sent} nudges sent, {self.nudges.withheld} withheld"
                f" (holdout), {self.nudges.reactions} app opens caused by a nudge"
            )
        return line


class SeedError(CommandError):
    """Seeding cannot go ahead (exit 1)."""


def _uuid4(rng: random.Random) -> str:
    """A version-4 UUID from `rng`, formatted directly (uuid.UUID is slow at millions of rows)."""
    bits = rng.getrandbits
    return f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-{0x8000 | bits(14):04x}-{bits(48):012x}"


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


HOURS = range(24)
WEEKDAY_CUM = _cumulative(WEEKDAY_HOURS)
WEEKEND_CUM = _cumulative(WEEKEND_HOURS)
TZ_NAMES, TZ_CUM = [n for n, _ in TIMEZONES], _cumulative(tuple(w for _, w in TIMEZONES))
SOURCE_NAMES, SOURCE_CUM = [n for n, _ in SOURCES], _cumulative(tuple(w for _, w in SOURCES))
SEGMENT_CUM = _cumulative(tuple(s.share for s in SEGMENTS))


@cache
def _utc_offset(tz: str, day: int) -> int:
    """Seconds east of UTC in `tz` at local noon of `day` (days since 1970-01-01)."""
    noon = datetime(1970, 1, 1) + timedelta(days=day, hours=12)
    offset = ZoneInfo(tz).utcoffset(noon)
    assert offset is not None  # a ZoneInfo has an offset at every instant
    return int(offset.total_seconds())


@cache
def _date(day: int) -> str:
    return date.fromordinal(day + EPOCH_ORDINAL).isoformat()


@cache
def _times_of_day() -> list[str]:
    return [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)]


def format_timestamp(epoch: int) -> str:
    """COPY text for a UTC instant."""
    return f"{_date(epoch // DAY)} {_times_of_day()[epoch % DAY]}+00"


def plan_users(count: int, days: int, seed: int, now: int) -> list[Profile]:
    """Who the users are: sign-up, time zone, engagement level and whether they drift off."""
    rng = random.Random(seed)
    start = now - days * DAY
    profiles = []
    for index in range(count):
        segment = rng.choices(SEGMENTS, cum_weights=SEGMENT_CUM)[0]
        tz = rng.choices(TZ_NAMES, cum_weights=TZ_CUM)[0]
        if rng.random() < SHARE_SIGNED_UP_IN_PERIOD:
            created = rng.randrange(start, now - 3600)
        else:
            created = start - int(rng.expovariate(1 / (120 * DAY))) - rng.randrange(1, DAY)
        meta = {}
        if rng.random() < SHARE_WITH_TIMEZONE:
            meta["timezone"] = tz
        if rng.random() < SHARE_OPTED_OUT:
            meta["nudges_opt_out"] = "true"
        drifts = segment.name != "dormant" and rng.random() < SHARE_DRIFTING_OFF
        platform = "ios" if rng.random() < 0.55 else "android"
        profiles.append(
            Profile(
                id=_uuid4(rng),
                email=f"user{index:06d}.seed{seed}@example.com",
                created=created,
                timezone=tz,
                meta=meta,
                p_active=min(0.98, segment.p_active * rng.uniform(0.7, 1.3)),
                weekend_factor=rng.uniform(0.6, 1.3),
                sessions=segment.sessions * rng.uniform(0.7, 1.3),
                p_goal=segment.p_goal,
                p_coach=segment.p_coach,
                churn=rng.randrange(max(start, created), now) if drifts else None,
                source=(
                    rng.choices(SOURCE_NAMES, cum_weights=SOURCE_CUM)[0] if rng.random() < SHARE_WITH_WEARABLE else None
                ),
                steps=int(min(16000, max(2000, rng.gauss(7500, 2500)))),
                weekend_steps=rng.uniform(0.75, 1.25),
                app_open_value=f'{{"platform": "{platform}", "app_version": "{rng.choice(APP_VERSIONS)}"}}',
                goals=tuple(rng.sample(GOALS, rng.randint(1, 3))),
                event_seed=rng.getrandbits(64),
            )
        )
    return profiles


def _sessions(rng: random.Random, mean: float) -> int:
    """1 + Poisson(mean - 1): a user who opens the app that day opens it at least once."""
    limit, k, p = math.exp(-max(mean - 1, 0.0)), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return 1 + k


def user_events(p: Profile, days: int, now: int) -> list[Event]:
    """One user's events in [now - days, now), at local hours, until they go quiet."""
    rng = random.Random(p.event_seed)
    draw = rng.random  # hot loop: `lo + int(draw() * span)` is randrange without its checks
    lo, hi = max(now - days * DAY, p.created), now if p.churn is None else min(now, p.churn)
    events: list[Event] = []

    def emit(ts: int, event_type: str, value: str) -> None:
        if lo <= ts < hi:
            events.append((_uuid4(rng), ts, event_type, value, draw() < SHARE_SOFT_DELETED))

    if p.created >= lo:
        emit(p.created + 10 + int(draw() * 600), "app_open", p.app_open_value)
    streaks: dict[str, tuple[int, int]] = {}  # goal -> (day last completed, streak)
    for day in range(lo // DAY - 1, hi // DAY + 2):
        weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        chance = p.p_active * (p.weekend_factor if weekend else 1.0)
        if p.churn is not None:
            chance *= min(1.0, max(0.0, (p.churn - day * DAY) / DRIFT_SECONDS))
        if draw() >= chance:
            continue
        midnight = day * DAY - _utc_offset(p.timezone, day)
        cum_weights = WEEKEND_CUM if weekend else WEEKDAY_CUM
        hours = rng.choices(HOURS, cum_weights=cum_weights, k=_sessions(rng, p.sessions))
        for n, start in enumerate(sorted(midnight + h * 3600 + int(draw() * 3600) for h in hours)):
            emit(start, "app_open", p.app_open_value)
            if n == 0 and p.source:  # opening the app syncs yesterday's steps
                yesterday_weekend = (day + 2) % 7 >= 5
                factor = (p.weekend_steps if yesterday_weekend else 1.0) * rng.lognormvariate(0, 0.3)
                steps = max(300, int(p.steps * factor))
                value = f'{{"steps": {steps}, "source": "{p.source}", "date": "{_date(day - 1)}"}}'
                emit(start + 5 + int(draw() * 90), "steps_import", value)
            if draw() < p.p_goal:
                goal = p.goals[int(draw() * len(p.goals))]
                last_day, streak = streaks.get(goal, (None, 0))
                if last_day != day:
                    streak = streak + 1 if last_day == day - 1 else 1
                    streaks[goal] = (day, streak)
                    value = f'{{"goal": "{goal}", "streak": {streak}}}'
                    emit(start + 30 + int(draw() * 900), "goal_complete", value)
            if draw() < p.p_coach:
                direction = "to_coach" if draw() < 0.6 else "from_coach"
                emit(
                    start + 10 + int(draw() * 600),
                    "coach_message",
                    f'{{"direction": "{direction}", "length": {12 + int(draw() * 389)}}}',
                )
    return events


def _now_epoch(now: datetime | None) -> int:
    if now is None:
        return int(time.time()) // 3600 * 3600
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int(now.timestamp())


def _copy_users(cur: psycopg.Cursor, profiles: list[Profile]) -> None:
    with cur.copy(COPY_USERS) as copy:
        for p in profiles:
            created = format_timestamp(p.created)
            copy.write(f"{p.id}\t{p.email}\t{created}\t{created}\t{json.dumps(p.meta)}\n")


def _copy_events(
    cur: psycopg.Cursor,
    profiles: list[Profile],
    days: int,
    now: int,
    progress: Progress,
    model: EngineModel | None = None,
    tally: NudgeTally | None = None,
) -> tuple[int, int]:
    """COPY every user's events, one statement per chunk of users, so the insert triggers work on
    bounded transition tables and the progress bar follows the server. Returns (events, quiet users).
    """
    events = quiet = 0
    quiet_since = now - 2 * DAY
    for first in range(0, len(profiles), USERS_PER_COPY):
        with cur.copy(COPY_EVENTS) as copy:
            lines: list[str] = []
            for done, p in enumerate(profiles[first : first + USERS_PER_COPY], first + 1):
                last = 0
                events_of_user = user_events(p, days, now)
                if model is not None and tally is not None:
                    rng = random.Random(p.event_seed ^ 0x5EED)
                    events_of_user += model.decide(
                        p.id, p.created, p.meta, events_of_user, now - days * DAY, now, p.app_open_value, rng, tally
                    )
                for event_id, ts, event_type, value, deleted in events_of_user:
                    row = (event_id, p.id, format_timestamp(ts), event_type, value, "t" if deleted else "f")
                    lines.append("\t".join(row) + "\n")
                    if not deleted:
                        last = max(last, ts)
                quiet += last < quiet_since
                if len(lines) >= 10000:
                    copy.write("".join(lines))
                    events += len(lines)
                    lines.clear()
                    progress.update(done, f"{events} events")
            copy.write("".join(lines))
            events += len(lines)
        progress.update(done, f"{events} events", force=True)
    return events, quiet


def seed(
    url: str | None,
    users: int,
    days: int,
    seed: int = 0,
    now: datetime | None = None,
    *,
    into_auth: bool = False,
    if_empty: bool = False,
    stream: TextIO | None = None,
    nudge_effect: float | None = None,
) -> SeedReport | None:
    """Generate and load the data in one transaction: a failed seed leaves nothing behind.

    With `if_empty`, a database that already has events is left alone (returns None), so a
    launcher can seed demo data on first start only."""
    started = time.monotonic()
    model, tally = None, None
    if nudge_effect is not None:
        settings = get_settings()
        if not any(rule.holdout_percent for rule in settings.nudge_rules):
            raise SeedError(
                "--nudge-effect needs a rule with a holdout to compare against: set holdout_percent in "
                'NUDGE_RULES, e.g. [{"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 50}]'
            )
        model, tally = EngineModel.from_settings(settings, nudge_effect), NudgeTally()
    now_epoch = _now_epoch(now)
    profiles = plan_users(users, days, seed, now_epoch)
    with connect(url, autocommit=True) as conn:
        migrated, supabase_auth = one_row(conn.execute(query("seed_preflight")))
        if not migrated:
            raise SeedError("the database is not migrated: run `python -m events_schema migrate` first")
        if supabase_auth and not into_auth:
            raise SeedError(
                "auth.users here belongs to Supabase Auth; seeding would add fake accounts that cannot "
                "sign in: pass --into-auth to do it anyway"
            )
        if if_empty and one_row(conn.execute("select exists (select 1 from public.engagement_events)"))[0]:
            return None
        progress = Progress(users, "seeding", stream)
        try:
            with conn.transaction(), conn.cursor() as cur:
                _copy_users(cur, profiles)
                events, quiet = _copy_events(cur, profiles, days, now_epoch, progress, model, tally)
        except errors.UniqueViolation as exc:
            raise SeedError(
                f"users of seed {seed} are already in this database: use another --seed or a fresh database"
            ) from exc
        except psycopg.Error as exc:
            detail = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
            raise SeedError(f"seeding failed: {detail}") from exc
        finally:
            progress.close()
        conn.execute(FOLD)
        conn.execute(ANALYZE)
    return SeedReport(
        users=users,
        events=events,
        days=days,
        seed=seed,
        now=datetime.fromtimestamp(now_epoch, UTC),
        seconds=time.monotonic() - started,
        quiet_48h=quiet,
        opted_out=sum(1 for p in profiles if "nudges_opt_out" in p.meta),
        without_timezone=sum(1 for p in profiles if "timezone" not in p.meta),
        nudges=tally,
    )


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a probability from 0 to 1, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=whole_number(1), default=1000, help="how many users (default 1000)")
    parser.add_argument("--days", type=whole_number(1), default=30, help="days of history until now (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same data (default 0)")
    parser.add_argument(
        "--now",
        type=instant,
        default=None,
        help="ISO 8601 instant with offset the history ends at (default: the current hour, UTC)",
    )
    parser.add_argument(
        "--nudge-effect",
        type=_share,
        default=None,
        metavar="E",
        help="replay the engine's nudges for NUDGE_RULES (a rule needs a holdout_percent); a nudged user "
        "then opens the app within 12 h with probability E (0 to 1) because of it",
    )
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the database already has events",
    )
    parser.add_argument(
        "--into-auth",
        action="store_true",
        help="seed even where Supabase Auth owns auth.users (adds fake accounts to a real project)",
    )


def run(args: argparse.Namespace) -> int:
    report = seed(
        args.database_url,
        args.users,
        args.days,
        args.seed,
        args.now,
        into_auth=args.into_auth,
        if_empty=args.if_empty,
        nudge_effect=args.nudge_effect,
    )
    with keeping_status(0):
        print(report.summary() if report else "the database already has events: not seeding (--if-empty)")
    return 0
