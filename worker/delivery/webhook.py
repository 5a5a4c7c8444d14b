"""A signed POST per nudge, for a Supabase Edge Function or any backend that sends the push itself.

The body is JSON: the nudge (id, user, rule, values), the rendered title and body, and the user's
device tokens. Headers: `Idempotency-Key: <nudge id>` (the same on every retry and after a
restart, so the receiver can drop repeats), and `X-Signature: t=<unix seconds>,v1=<hex>`, where
v1 is HMAC-SHA256 with WEBHOOK_SECRET over `<t>.<body>`: the receiver recomputes it over the raw
body and refuses a stale `t` (replays). Answers: 2xx delivered (a JSON `message_id`, if any, is
kept); 408, 429 and 5xx retried, honouring Retry-After; 410 Gone means the user has no reachable
device (recorded as failed, `gone`); any other status fails the nudge with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from events_schema.settings import Settings
from worker.delivery.providers import Answer, DeliveryConfigError, Message, http_answer, http_url

SIGNATURE_HEADER = "X-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: `t=<timestamp>,v1=<HMAC-SHA256 of "<t>.<body>">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float | None = None, tolerance: float = 300) -> bool:
    """What a receiver does: the signature matches the raw body and is at most `tolerance` old."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookProvider:
    name = "webhook"
    per_token = False

    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url = url
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookProvider:
        if not settings.webhook_url or not settings.webhook_secret:
            raise DeliveryConfigError("DELIVERY_PROVIDER=webhook needs WEBHOOK_URL and WEBHOOK_SECRET")
        return cls(
            http_url("WEBHOOK_URL", settings.webhook_url), settings.webhook_secret, settings.delivery_timeout_seconds
        )

    async def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def send(self, message: Message) -> Answer:
        assert self._session is not None, "start() first"
        body = json.dumps(
            {
                "nudge_id": str(message.nudge_id),
                "user_id": str(message.user_id),
                "rule": message.rule,
                "title": message.title,
                "body": message.body,
                "data": message.data,
                "tokens": [{"token": token, "platform": platform} for token, platform in message.tokens],
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(message.nudge_id),
            SIGNATURE_HEADER: sign(self.secret, int(time.time()), body),
        }
        async with self._session.post(self.url, data=body, headers=headers, timeout=self.timeout) as response:
            payload = await _json(response)
            if 200 <= response.status < 300:
                return Answer("ok", message_id=str(payload.get("message_id") or message.nudge_id))
            detail = str(payload.get("error") or response.reason or "")
            if response.status == 408:
                return Answer("retry", "408", detail)
            if answer := http_answer(response.status, response.headers, str(response.status), detail):
                return answer
            if response.status == 410:
                return Answer("failed", "gone", detail)
            return Answer("failed", str(response.status), detail)


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        payload = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return payload if isinstance(payload, dict) else {}
