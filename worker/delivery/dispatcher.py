"""The dispatcher: every `nudge_sent`, in commit order, to the provider, and its outcome to the log.

Each batch is one transaction that locks the state row (`select ... for update skip locked`),
reads the next page of nudge_sent from the event feed after the stored cursor, sends it, writes
one `nudge_delivered` or `nudge_failed` per nudge and moves the cursor, then commits. So:
- two dispatchers never send the same batch: the second finds the row locked and stands aside;
- a dispatcher killed mid-batch commits nothing of it: the next one reads the same page again
  and sends it again. The provider may so receive the in-flight batch twice (at most
  DELIVERY_BATCH_SIZE nudges): FCM has no idempotency key; the webhook's Idempotency-Key (the
  nudge id) lets a receiver drop the repeats. Outcomes stay one per nudge (unique index).
- a page may hold nudges that already have an outcome (a batch that ended in a provider outage
  keeps its cursor before the first nudge it could not send): those are not sent again.

Retries: 429, 5xx and time-outs are retried per message up to DELIVERY_MAX_ATTEMPTS, waiting
DELIVERY_BACKOFF_SECONDS doubling up to DELIVERY_BACKOFF_MAX_SECONDS, or the Retry-After the
provider asked for if longer. A message whose attempts run out while the provider accepts
others has failed (recorded with the code). One whose attempts run out while nothing at all
got through since its first failure is a provider outage, not a failed message: it is not
recorded, the cursor stays before it, and the dispatcher pauses (paused_until) and then tries
again, so an outage of any length loses nothing: its backlog goes out when the provider is back.
A Retry-After longer than the backoff ceiling pauses the dispatcher for that long the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg

from events_schema.postgrest import claims_for
from events_schema.queries import QueryFolder
from events_schema.settings import Settings, get_settings
from worker.database import act_as_service_role, connection
from worker.delivery.providers import Answer, Message, Provider, RateLimit, make_provider, render
from worker.feed import Cursor, FeedEvent, current_position, read_page

query = QueryFolder.beside(__file__)
logger = logging.getLogger(__name__)
MAX_TOKENS_PER_USER = 10  # the most recently seen; older installations are likely gone
IDLE_POLL_SECONDS = 0.1  # follow mode: how soon an empty feed is read again


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PassSummary:
    provider: str
    ran: bool = True
    note: str = ""
    batches: int = 0
    read: int = 0  # nudge_sent rows read from the feed
    delivered: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # by reason
    already_done: int = 0  # had their outcome already (read again after a cut batch)
    deferred: int = 0  # provider outage: left for the next pass
    tokens_removed: int = 0
    caught_up: bool = False
    lag_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "failed": dict(self.failed)}

    def log_line(self) -> str:
        failed = ",".join(f"{k}={v}" for k, v in sorted(self.failed.items())) or "0"
        return (
            f"provider={self.provider} ran={self.ran} batches={self.batches} read={self.read} "
            f"delivered={self.delivered} failed={failed} deferred={self.deferred} "
            f"tokens_removed={self.tokens_removed} caught_up={self.caught_up}"
            + (f" note={self.note}" if self.note else "")
        )


@dataclass
class Sent:
    """What became of one message after its retries."""

    answer: Answer
    attempts: int
    deferred: bool = False
    pause: float = 0.0  # seconds the provider asked the dispatcher to wait (deferred only)
    token: str | None = None


@dataclass
class Decision:
    """A nudge's outcome event (None: deferred), and the tokens to remove."""

    event: FeedEvent
    outcome: tuple[str, dict[str, Any]] | None
    removed: list[str] = field(default_factory=list)
    pause: float = 0.0
    why: str = ""  # deferred: the provider's last answer


class Dispatcher:
    def __init__(self, settings: Settings | None = None, provider: Provider | None = None) -> None:
        self.settings = settings or get_settings()
        self.provider = provider if provider is not None else make_provider(self.settings)
        self._last_success = float("-inf")  # monotonic time of the latest accepted send

    def run(
        self,
        *,
        follow: bool = False,
        max_seconds: float | None = None,
        stop: Callable[[], bool] = lambda: False,
        now: Callable[[], datetime] = utcnow,
    ) -> PassSummary:
        """Send batches until caught up (or, with `follow`, until `stop()` or `max_seconds`)."""
        if self.provider is None:
            return PassSummary("none", ran=False, note="DELIVERY_PROVIDER=none: nothing is sent")
        return asyncio.run(self._run(follow, max_seconds, stop, now))

    async def _run(
        self, follow: bool, max_seconds: float | None, stop: Callable[[], bool], now: Callable[[], datetime]
    ) -> PassSummary:
        assert self.provider is not None
        summary = PassSummary(self.provider.name)
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        connector = aiohttp.TCPConnector(limit=self.settings.delivery_concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await self.provider.start(session)
            self._limit = RateLimit(self.settings.delivery_rate_per_second)
            self._slots = asyncio.Semaphore(self.settings.delivery_concurrency)
            while not stop():
                wait = await self._batch(summary, now)
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if wait is None:
                    continue  # more to send
                if not follow:
                    break
                await _sleep(min(wait, max(0.0, deadline - time.monotonic())) if deadline else wait, stop)
        return summary

    async def _batch(self, summary: PassSummary, now: Callable[[], datetime]) -> float | None:
        """One batch transaction; None when more may follow at once, else seconds to wait."""
        with connection() as conn, conn.transaction():
            act_as_service_role(conn)
            row = conn.execute(query("delivery_lock_state")).fetchone()
            if row is None:
                summary.ran, summary.note = summary.batches > 0, "another dispatcher is sending"
                return IDLE_POLL_SECONDS * 10
            cursor_text: str | None = row[0]
            paused_until: datetime | None = row[1]
            caught_up_at: datetime | None = row[3]
            started = now()
            if paused_until is not None and paused_until > started:
                summary.note = f"paused until {paused_until:%H:%M:%S} UTC: {row[2]}"
                return (paused_until - started).total_seconds()
            if cursor_text is None:
                # The first pass with a provider starts from now: no backlog of old nudges.
                self._save(conn, current_position(conn), started, caught_up=True)
                return None
            page, end, full = read_page(
                conn,
                Cursor.decode(cursor_text),
                "service_role",
                claims_for("service_role"),
                event_types=["nudge_sent"],
                page_size=self.settings.delivery_batch_size,
            )
            act_as_service_role(conn)
            summary.batches += 1
            summary.read += len(page)
            decisions = await self._decide(conn, page, started, summary)
            stuck = next((i for i, d in enumerate(decisions) if d.outcome is None), None)
            self._record(conn, decisions, now(), summary)
            if stuck is None:
                caught_up = not full
                self._save(conn, end, now(), caught_up=caught_up)
                summary.caught_up = caught_up
                summary.lag_seconds = 0.0 if caught_up else _lag(caught_up_at, started)
                return IDLE_POLL_SECONDS if caught_up else None
            position = decisions[stuck - 1].event.position if stuck else Cursor.decode(cursor_text)
            waiting = [d for d in decisions if d.outcome is None]
            pause = max(d.pause for d in waiting) or self.settings.delivery_backoff_max_seconds
            note = f"provider unavailable ({waiting[0].why[:200]}): {len(waiting)} nudges left for the next pass"
            self._save(conn, position, now(), caught_up=False, paused_for=pause, reason=note)
            summary.note, summary.lag_seconds = note, _lag(caught_up_at, started)
            return pause

    async def _decide(
        self, conn: psycopg.Connection, page: list[FeedEvent], started: datetime, summary: PassSummary
    ) -> list[Decision]:
        """Each nudge's outcome: not sent (and why), or what the provider answered."""
        assert self.provider is not None
        ids = [str(e.id) for e in page]
        known = {r[0] for r in conn.execute(query("delivery_known_outcomes"), {"nudge_ids": ids})} if ids else set()
        todo = [e for e in page if str(e.id) not in known and not e.is_deleted]
        summary.already_done += len(page) - len(todo)
        users = sorted({e.user_id for e in todo})
        recipients = {
            r[0]: (r[1], list(zip(r[2], r[3], strict=True))[:MAX_TOKENS_PER_USER])
            for r in conn.execute(query("delivery_recipients"), {"user_ids": users})
        }
        max_age = timedelta(seconds=self.settings.delivery_max_age_seconds)
        jobs = []
        for event in todo:
            opted_out, tokens = recipients.get(event.user_id, (False, []))
            base = {"nudge_id": str(event.id), "rule": str(event.value.get("rule", "")), "provider": self.provider.name}
            if started - event.timestamp > max_age:
                jobs.append(_done(event, _failed(base, "expired", attempts=0)))
            elif opted_out:
                jobs.append(_done(event, _failed(base, "opted_out", attempts=0)))
            elif self.provider.per_token and not tokens:
                jobs.append(_done(event, _failed(base, "no_token", attempts=0)))
            else:
                jobs.append(self._deliver(event, base, tokens))
        return list(await asyncio.gather(*jobs))

    async def _deliver(self, event: FeedEvent, base: dict[str, Any], tokens: list[tuple[str, str]]) -> Decision:
        """Send one nudge (to each token, for a per-token provider) and sum up the answers."""
        assert self.provider is not None
        rule = base["rule"]
        title, body = render(self.settings.delivery_messages, rule, event.value)
        common = {"nudge_id": event.id, "user_id": event.user_id, "rule": rule, "title": title, "body": body}
        if self.provider.per_token:
            messages = [Message(**common, token=token, platform=platform) for token, platform in tokens]
        else:
            messages = [Message(**common, tokens=tuple(tokens))]
        sent = await asyncio.gather(*(self._send(m) for m in messages))
        removed = [s.token for s in sent if s.answer.kind == "bad_token" and s.token]
        attempts = max(s.attempts for s in sent)
        ok = [s.answer.message_id for s in sent if s.answer.kind == "ok"]
        if ok:
            value = {**base, "message_ids": ok, "attempts": attempts, "devices": len(messages)}
            return Decision(event, ("nudge_delivered", {**value, "tokens_removed": len(removed)}), removed)
        if any(s.deferred for s in sent):
            last = next(s.answer for s in sent if s.deferred)
            why = f"{last.code}: {last.detail}" if last.detail else last.code
            return Decision(event, None, removed, pause=max(s.pause for s in sent), why=why)
        last = sent[-1].answer
        reason = (
            "unregistered"
            if len(removed) == len(sent)
            else ("retries_exhausted" if last.kind == "retry" else "refused")
        )
        value = _failed(base, reason, attempts=attempts, code=last.code, error=last.detail[:500])
        return Decision(event, ("nudge_failed", {**value, "tokens_removed": len(removed)}), removed)

    async def _send(self, message: Message) -> Sent:
        """One message with its retries (429, 5xx, time-outs), backing off, honouring Retry-After."""
        assert self.provider is not None
        settings = self.settings
        first_failure: float | None = None
        attempt = 0
        while True:
            attempt += 1
            await self._limit.take()
            async with self._slots:
                try:
                    answer = await self.provider.send(message)
                except TimeoutError:
                    answer = Answer("retry", "timeout", f"no answer within {settings.delivery_timeout_seconds:g} s")
                except aiohttp.ClientError as exc:
                    answer = Answer("retry", "connection", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            if answer.kind == "ok":
                self._last_success = time.monotonic()
            if answer.kind != "retry":
                return Sent(answer, attempt, token=message.token)
            first_failure = first_failure if first_failure is not None else time.monotonic()
            wait = min(settings.delivery_backoff_max_seconds, settings.delivery_backoff_seconds * 2 ** (attempt - 1))
            wait *= random.uniform(0.8, 1.0)  # jitter: retries of one batch do not arrive together
            if answer.retry_after is not None:
                wait = max(wait, answer.retry_after)
            if wait > settings.delivery_backoff_max_seconds:
                # Longer than we hold a batch open: the whole dispatcher waits, across passes.
                return Sent(answer, attempt, deferred=True, pause=wait, token=message.token)
            if attempt >= settings.delivery_max_attempts:
                outage = self._last_success < first_failure
                return Sent(answer, attempt, deferred=outage, token=message.token)
            await asyncio.sleep(wait)

    def _record(self, conn: psycopg.Connection, decisions: list[Decision], now: datetime, summary: PassSummary) -> None:
        outcomes = [(d.event.user_id, *d.outcome) for d in decisions if d.outcome is not None]
        removed = sorted({t for d in decisions for t in d.removed})
        if outcomes:
            user_ids, event_types, values = zip(*outcomes, strict=True)
            conn.execute(
                query("delivery_write_outcomes"),
                {
                    "now": now,
                    "user_ids": list(user_ids),
                    "event_types": list(event_types),
                    "values": [json.dumps(v) for v in values],
                },
            )
        if removed:
            conn.execute(query("delivery_remove_tokens"), {"tokens": removed})
        summary.tokens_removed += len(removed)
        for d in decisions:
            if d.outcome is None:
                summary.deferred += 1
            elif d.outcome[0] == "nudge_delivered":
                summary.delivered += 1
            else:
                summary.failed[d.outcome[1]["reason"]] += 1

    def _save(
        self,
        conn: psycopg.Connection,
        position: Cursor,
        now: datetime,
        *,
        caught_up: bool,
        paused_for: float | None = None,
        reason: str | None = None,
    ) -> None:
        assert self.provider is not None
        conn.execute(
            query("delivery_save_state"),
            {
                "feed_cursor": position.encode(),
                "provider": self.provider.name,
                "now": now,
                "caught_up": caught_up,
                "paused_until": now + timedelta(seconds=paused_for) if paused_for else None,
                "pause_reason": reason,
            },
        )


async def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Wait, but notice a stop request within a tenth of a second (a long Retry-After pause)."""
    end = time.monotonic() + seconds
    while not stop() and (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.1))


def _failed(base: dict[str, Any], reason: str, **extra: Any) -> dict[str, Any]:
    return {**base, "reason": reason, **extra}


async def _done(event: FeedEvent, value: dict[str, Any]) -> Decision:
    return Decision(event, ("nudge_failed", value))


def _lag(caught_up_at: datetime | None, now: datetime) -> float | None:
    return None if caught_up_at is None else max(0.0, (now - caught_up_at).total_seconds())


@dataclass(frozen=True)
class State:
    started: bool
    provider: str | None
    last_pass_at: datetime | None
    caught_up_at: datetime | None
    paused_until: datetime | None
    pause_reason: str | None


def read_state(conn: psycopg.Connection) -> State:
    """The dispatcher's state row as health reports it (no lock; the caller's transaction)."""
    act_as_service_role(conn)
    row = conn.execute(query("delivery_read_state")).fetchone()
    assert row is not None, "nudge_delivery_state has its one row from the migration"
    return State(*row)


_dispatchers: dict[str, Dispatcher] = {}


def deliver(*, follow: bool = False, max_seconds: float | None = None, **kwargs: Any) -> PassSummary:
    """One pass with this process's dispatcher (kept: FCM's access token lasts an hour)."""
    settings = get_settings()
    key = settings.model_dump_json(include={"delivery_provider", "fcm_credentials_file", "fcm_endpoint", "webhook_url"})
    if key not in _dispatchers:
        _dispatchers[key] = Dispatcher(settings)
    return _dispatchers[key].run(follow=follow, max_seconds=max_seconds, **kwargs)
