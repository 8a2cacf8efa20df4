"""One server process for benchmarks/fanout_redis.py: python fanout_redis_server.py MODE URL
(URL: Redis's); prints its port once it listens and is subscribed.

Every connection is a watcher of one topic until its client leaves.

- guard: websockets with ws_close_policy's ``guard``, watching topic ``bench`` through a
  ``ws_close_policy.fanout.Subscriber`` (channel ``ws-close-policy:bench``);
- bare: websockets alone, and what an application writes by hand: one redis-py asyncio
  pub/sub reader on channel ``bare:bench`` passing each payload as it came to
  ``websockets.broadcast``, in a text frame.

No keepalive pings (as in benchmarks/e2e_server.py): one landing in a measurement window
would count 500 pings as the fan-out's work.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import redis.asyncio as aredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

TOPIC = "bench"
BARE_CHANNEL = "bare:bench"


async def serve_guarded(url: str, sock: socket.socket) -> None:
    from ws_close_policy import Policy
    from ws_close_policy.adapters import Connections
    from ws_close_policy.adapters.websockets import guard, serve_options
    from ws_close_policy.fanout import Subscriber

    policy = Policy()
    connections = Connections(policy)
    async with Subscriber(url, connections) as subscriber:

        async def handler(ws: ServerConnection) -> None:
            async with (
                guard(ws, policy, connections=connections) as conn,
                subscriber.watching(conn, TOPIC),
            ):
                async for _ in conn:
                    pass

        options = serve_options(policy)
        async with serve(handler, sock=sock, compression=None, ping_interval=None, **options):
            print(sock.getsockname()[1], flush=True)
            await asyncio.Future()


async def serve_bare(url: str, sock: socket.socket) -> None:
    watchers: set[ServerConnection] = set()
    client = aredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(BARE_CHANNEL)

    async def relay() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                broadcast(watchers, message["data"], text=True)

    async def handler(ws: ServerConnection) -> None:
        watchers.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            watchers.discard(ws)

    async with serve(handler, sock=sock, compression=None, ping_interval=None):
        print(sock.getsockname()[1], flush=True)
        await relay()  # until Redis goes away


def main() -> None:
    mode, url = sys.argv[1:3]
    sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
    asyncio.run(serve_guarded(url, sock) if mode == "guard" else serve_bare(url, sock))


if __name__ == "__main__":
    main()
