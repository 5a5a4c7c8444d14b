"""Real HTTP servers on loopback that speak the providers' protocols, for the delivery tests.

- FcmStub: FCM HTTP v1 (`POST /v1/projects/{project}/messages:send`, bearer token required) and
  Google's OAuth token endpoint for a service account (`POST /token`, grant type jwt-bearer: the
  assertion's RS256 signature is checked with the key's public half, its audience and scope).
  Answers come from a script per token (a list of (status, body, headers)), else 200.
- WebhookReceiver: checks each request's HMAC signature as a receiver would.
Each runs an aiohttp server on its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "demo-project"
# google-auth signs the assertion for Google's token endpoint whatever the key's token_uri says
# (google/oauth2/service_account.py), so that is the audience a token endpoint sees.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
Reply = tuple[int, dict[str, Any], dict[str, str]]


def fcm_error(status: int, code: str, message: str = "", bad_request: bool = False) -> Reply:
    """An FCM v1 error body as the ErrorCode reference shows it."""
    names = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
    detail: dict[str, Any] = (
        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.data[0].value"}]}
        if bad_request
        else {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    )
    body = {
        "error": {"code": status, "message": message or code, "status": names.get(status, code), "details": [detail]}
    }
    return status, body, {}


@dataclass
class Received:
    at: float
    token: str | None
    nudge_id: str
    body: dict[str, Any]
    headers: dict[str, str]


class _Server:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> _Server:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class FcmState:
    scripts: dict[str, list[Reply]] = field(default_factory=lambda: defaultdict(list))
    down: Reply | None = None  # every send answers this while set
    delay: float = 0.0  # seconds before each answer
    received: list[Received] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    token_requests: int = 0


class FcmStub(_Server):
    def __init__(self, key_file: Path) -> None:
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_file = key_file
        self.state = FcmState()
        self._lock = threading.Lock()

    def start(self) -> FcmStub:
        super().start()
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.key_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "test-key-1",
                    "private_key": pem,
                    "client_email": f"push@{PROJECT}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{self.base}/token",
                }
            )
        )
        return self

    @property
    def endpoint(self) -> str:
        return f"{self.base}/v1/projects/{{project_id}}/messages:send"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        return app

    def script(self, token: str, *replies: Reply) -> None:
        with self._lock:
            self.state.scripts[token].extend(replies)

    def sent(self, ok_only: bool = True) -> list[Received]:
        with self._lock:
            return [r for r in self.state.received if not ok_only or r.body.get("_status") == 200]

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.state.token_requests += 1
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion")), self.key.public_key(), algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE
            )
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        if "firebase.messaging" not in claims.get("scope", ""):
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"ya29.stub-{len(self.state.tokens_issued) + 1}"
        self.state.tokens_issued.append(token)
        return web.json_response({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.state.delay:
            await asyncio.sleep(self.state.delay)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        message = body.get("message", {})
        token = message.get("token")
        if bearer not in self.state.tokens_issued:
            status, reply, headers = fcm_error(401, "UNAUTHENTICATED")
        elif request.match_info["project"] != PROJECT:
            status, reply, headers = fcm_error(403, "SENDER_ID_MISMATCH")
        else:
            with self._lock:
                scripted = self.state.scripts.get(token)
                status, reply, headers = (
                    self.state.down
                    or (scripted.pop(0) if scripted else None)
                    or (200, {"name": f"projects/{PROJECT}/messages/{len(self.state.received)}"}, {})
                )
        with self._lock:
            self.state.received.append(
                Received(
                    time.monotonic(),
                    token,
                    message.get("data", {}).get("nudge_id", ""),
                    {**body, "_status": status},
                    dict(request.headers),
                )
            )
        return web.json_response(reply, status=status, headers=headers)


class WebhookReceiver(_Server):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.received: list[Received] = []
        self.refused = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/push", self._push)
        return app

    def signed(self, header: str, raw: bytes) -> bool:
        """The receiver's own check, written from the documented scheme (not the sender's code):
        `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, t within five minutes."""
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        if not parts.get("t", "").isdigit() or abs(time.time() - int(parts["t"])) > 300:
            return False
        expected = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("v1", ""))

    async def _push(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not self.signed(request.headers.get("X-Signature", ""), raw):
            self.refused += 1
            return web.json_response({"error": "bad signature"}, status=401)
        body = json.loads(raw)
        self.received.append(Received(time.monotonic(), None, body["nudge_id"], body, dict(request.headers)))
        return web.json_response({"message_id": f"hook-{len(self.received)}"})
