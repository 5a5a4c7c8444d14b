"""What a push provider is to the dispatcher: one small interface, and the answers it gives.

A provider sends one message and says what became of it, as one of a few kinds the dispatcher
acts on: `ok` (record delivered), `retry` (429, 5xx, time-out: back off, honouring Retry-After),
`bad_token` (the provider calls the token unregistered or invalid: remove it), `failed` (any
other refusal: record it, never retry). The dispatcher owns retries, rates and records, so a
provider is only the request and the reading of its answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import aiohttp

from events_schema.errors import UsageError
from events_schema.settings import PushMessage, Settings

Kind = Literal["ok", "retry", "bad_token", "failed"]


class DeliveryConfigError(UsageError):
    """A provider that cannot work with these settings (a command exits 2)."""


@dataclass(frozen=True)
class Message:
    """One push: a nudge to one device (`token` None for a provider that finds the devices itself)."""

    nudge_id: UUID
    user_id: UUID
    rule: str
    title: str
    body: str
    token: str | None = None
    platform: str | None = None
    tokens: tuple[tuple[str, str], ...] = ()  # (token, platform): what the webhook is told
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    kind: Kind
    code: str = ""  # the provider's error status (UNREGISTERED, QUOTA_EXCEEDED, ...) or HTTP status
    detail: str = ""
    message_id: str | None = None
    retry_after: float | None = None  # seconds, from the Retry-After header


class Provider(Protocol):
    name: str
    # True: one message per device token (FCM); False: one per nudge, with the user's tokens.
    per_token: bool

    async def start(self, session: aiohttp.ClientSession) -> None: ...

    async def send(self, message: Message) -> Answer: ...


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def http_answer(status: int, headers: Any, error_status: str = "", detail: str = "") -> Answer | None:
    """The answers every HTTP provider shares: 429 and 5xx retry (with Retry-After); None otherwise."""
    if status == 429 or status >= 500:
        return Answer(
            "retry",
            error_status or str(status),
            detail,
            retry_after=retry_after_seconds(headers.get("Retry-After")),
        )
    return None


class _KeepMissing(dict[str, Any]):
    """format_map's values: a placeholder the nudge lacks stays as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(messages: dict[str, PushMessage], rule: str, value: dict[str, Any]) -> tuple[str, str]:
    """The rule's title and body (or the default's), with the nudge's values in their placeholders.

    A placeholder the nudge lacks is left as written rather than failing the send.
    """
    template = messages.get(rule) or messages["default"]
    values = _KeepMissing(value)
    try:
        return template.title.format_map(values), template.body.format_map(values)
    except (ValueError, TypeError, IndexError):
        return template.title, template.body


class RateLimit:
    """At most `per_second` sends, smoothed (a token bucket one second deep)."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._tokens = per_second
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.per_second, self._tokens + (now - self._last) * self.per_second)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.per_second)


def http_url(name: str, url: str | None) -> str:
    """A setting that must be an http(s) URL with a host, or DeliveryConfigError naming it."""
    parsed = urlsplit(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DeliveryConfigError(f"{name} must be an http(s) URL, got {url!r}")
    return str(url)


def make_provider(settings: Settings) -> Provider | None:
    """The configured provider (None for `none`); bad settings raise DeliveryConfigError, one line."""
    if settings.delivery_provider == "fcm":
        from worker.delivery.fcm import FcmProvider

        return FcmProvider.from_settings(settings)
    if settings.delivery_provider == "webhook":
        from worker.delivery.webhook import WebhookProvider

        return WebhookProvider.from_settings(settings)
    return None
