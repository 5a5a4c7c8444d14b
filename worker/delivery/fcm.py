"""Firebase Cloud Messaging HTTP v1: `POST {FCM_ENDPOINT}` with an OAuth2 bearer token.

google-auth (Google's own, kept-current library) turns the service account's JSON key into
access tokens: it signs the JWT and exchanges it at the key file's `token_uri`, and refreshes
before expiry. The send itself is one aiohttp request per message, because firebase-admin
hard-codes the FCM URL (`_MessagingService.FCM_URL`, no emulator variable for messaging), and
the endpoint must be a setting (tests, proxies, regional endpoints); its `send_each` is also
one HTTP request per message, from a thread pool, so it would not send faster.

Answers (FCM's ErrorCode reference): 200 with the message's `name`; UNREGISTERED (404) and
INVALID_ARGUMENT (400) whose details are an FcmError (not a BadRequest naming a field of our
payload) mean the token is dead; QUOTA_EXCEEDED (429), UNAVAILABLE (503) and INTERNAL (500)
are retried, honouring Retry-After; an access token FCM refuses (401 UNAUTHENTICATED) is
refreshed and the message retried. Anything else fails the message with its code.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account

from events_schema.settings import Settings
from worker.delivery.providers import Answer, DeliveryConfigError, Message, http_answer, http_url

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


class FcmProvider:
    name = "fcm"
    per_token = True

    def __init__(self, credentials: service_account.Credentials, url: str, timeout: float) -> None:
        self.credentials = credentials
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._refreshing: asyncio.Lock | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FcmProvider:
        path = settings.fcm_credentials_file
        if path is None:
            raise DeliveryConfigError("DELIVERY_PROVIDER=fcm needs FCM_CREDENTIALS_FILE (a service account's JSON key)")
        endpoint = http_url("FCM_ENDPOINT", settings.fcm_endpoint)
        info = _read_key(Path(path))
        try:
            credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        except (ValueError, KeyError) as exc:
            raise DeliveryConfigError(f"FCM_CREDENTIALS_FILE {path} is not a service account key: {exc}") from exc
        project = settings.fcm_project_id or info.get("project_id")
        if not project:
            raise DeliveryConfigError(f"FCM_CREDENTIALS_FILE {path} names no project_id; set FCM_PROJECT_ID")
        return cls(credentials, endpoint.replace("{project_id}", project), settings.delivery_timeout_seconds)

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Each pass runs its own event loop: its session, and a lock of that loop."""
        self._session = session
        self._refreshing = asyncio.Lock()

    async def _bearer(self) -> str:
        """A valid access token; refreshed once for every sender waiting (google-auth is blocking)."""
        if self.credentials.valid:
            return str(self.credentials.token)
        assert self._refreshing is not None, "start() first"
        async with self._refreshing:
            if not self.credentials.valid:  # another sender may have refreshed it meanwhile
                await asyncio.to_thread(self.credentials.refresh, google.auth.transport.requests.Request())
            return str(self.credentials.token)

    async def send(self, message: Message) -> Answer:
        assert self._session is not None, "start() first"
        try:
            bearer = await self._bearer()
        except google.auth.exceptions.GoogleAuthError as exc:
            # The token endpoint down, or the key refused: the provider is unusable, not the message.
            return Answer("retry", "oauth", _first_line(exc))
        body = {
            "message": {
                "token": message.token,
                "notification": {"title": message.title, "body": message.body},
                "data": {"nudge_id": str(message.nudge_id), "rule": message.rule, **message.data},
            }
        }
        async with self._session.post(
            self.url, json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=self.timeout
        ) as response:
            payload = await _json(response)
            if response.status == 200:
                return Answer("ok", message_id=str(payload.get("name", "")))
            return self._error(response, payload, bearer)

    def _error(self, response: aiohttp.ClientResponse, payload: dict[str, Any], bearer: str) -> Answer:
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        assert isinstance(error, dict)
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        fcm_code = next((str(d.get("errorCode")) for d in details if d.get("@type") == FCM_ERROR), "")
        code = fcm_code or str(error.get("status") or response.status)
        detail = str(error.get("message") or response.reason or "")
        if answer := http_answer(response.status, response.headers, code, detail):
            return answer
        if response.status == 401 and code == "UNAUTHENTICATED":
            if self.credentials.token == bearer:
                self.credentials.token = None  # the next send refreshes it
            return Answer("retry", code, detail)
        if code == "UNREGISTERED" or (
            code == "INVALID_ARGUMENT" and fcm_code and not any(d.get("@type") == BAD_REQUEST for d in details)
        ):
            return Answer("bad_token", code, detail)
        return Answer("failed", code, detail)


def _read_key(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeliveryConfigError(f"FCM_CREDENTIALS_FILE {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DeliveryConfigError(f"FCM_CREDENTIALS_FILE {path} is not readable JSON: {_first_line(exc)}") from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise DeliveryConfigError(f"FCM_CREDENTIALS_FILE {path} is not a service account key")
    return info


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        payload = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
