"""The embedded broker's child process: ``python -m deepapps_robotics.plant.amqtt_serve HOST PORT``.

It imports amqtt first and binds the port only when its parent writes a line on its stdin, so the
parent can launch a replacement while the old broker is still down (a restart then costs the
injected down time, not also the seconds a fresh interpreter needs to import amqtt). Nothing from
deepapps is imported here, for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import sys


def serve(host: str, port: int) -> None:
    """Wait for the parent's go line, then run amqtt on ``host:port`` until killed or orphaned."""
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):  # it logs every dropped connection; a restart drops them all
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 256}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    if not sys.stdin.readline():  # the parent went away before saying go
        return

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
