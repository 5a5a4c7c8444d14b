"""A loopback FCM HTTP v1 stand-in for bench/delivery.py, run as its own process so that its CPU is
not the dispatcher's: `python -m bench.fcm_stub --port 0 --delay 0.05` prints its port, then serves

- POST /token: Google's OAuth token endpoint (jwt-bearer grant; the assertion is not checked here,
  the tests check it);
- POST /v1/projects/{project}/messages:send: answers 200 with a message name after `--delay`
  seconds, noting each message's nudge id and wall-clock arrival;
- GET /stats: {"arrivals": {nudge_id: [unix seconds, ...]}}; DELETE /stats forgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import defaultdict

from aiohttp import web


def app(delay: float) -> web.Application:
    arrivals: dict[str, list[float]] = defaultdict(list)
    counter = [0]

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        return web.json_response({"access_token": "ya29.bench", "expires_in": 3600, "token_type": "Bearer"})

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        arrivals[body["message"]["data"]["nudge_id"]].append(time.time())
        await asyncio.sleep(delay)
        counter[0] += 1
        return web.json_response({"name": f"projects/{request.match_info['project']}/messages/{counter[0]}"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals})

    async def forget(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.json_response({})

    application = web.Application()
    application.router.add_post("/token", token)
    application.router.add_post("/v1/projects/{project}/messages:send", send)
    application.router.add_get("/stats", stats)
    application.router.add_delete("/stats", forget)
    return application


async def serve(port: int, delay: float) -> None:
    runner = web.AppRunner(app(delay), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.fcm_stub")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.delay))
    except KeyboardInterrupt:
        sys.exit(0)
