"""``python -m webapps.front --listen HOST:PORT --routes FILE [--metrics FILE]``: the asyncio front."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .forwarding import add_trusted_proxy_option
from .routes import ROUTES_POLL
from .server import Front


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:8001")
    return host.strip("[]") or "0.0.0.0", int(port)


async def run(args: argparse.Namespace) -> None:
    front = Front(
        args.routes,
        args.metrics,
        proto=args.proto,
        head_timeout=args.head_timeout,
        idle_timeout=args.idle_timeout,
        websocket_timeout=args.websocket_timeout,
        trusted_proxies=args.trusted_proxy,
        poll_interval=args.routes_poll,
    )
    host, port = args.listen
    server = await front.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"front: listening on {host}:{port}, routes from {args.routes}", file=sys.stderr, flush=True)
    await stop.wait()
    server.close()
    await front.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webapps.front", description=__doc__)
    parser.add_argument("--listen", type=parse_listen, required=True, help="HOST:PORT to listen on")
    parser.add_argument("--routes", required=True, help="the routes file the portal writes")
    parser.add_argument("--metrics", help="a JSON file rewritten every second with per-app figures")
    parser.add_argument(
        "--proto",
        default="http",
        choices=["http", "https"],
        help="X-Forwarded-Proto to send (https when TLS is terminated in front of this)",
    )
    add_trusted_proxy_option(parser)
    parser.add_argument("--head-timeout", type=float, default=10.0, help="seconds a request head may take")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        help="seconds an exchange may pass with no byte moving either way before it is closed",
    )
    parser.add_argument(
        "--websocket-timeout", type=float, default=3600.0, help="seconds a websocket may stay silent"
    )
    parser.add_argument("--routes-poll", type=float, default=ROUTES_POLL,
                        help=f"seconds between two looks at the routes file (default {ROUTES_POLL})")
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop: uvloop when installed (auto), or the standard one",
    )
    args = parser.parse_args(argv)
    if args.loop != "asyncio":
        try:
            import uvloop  # the same front on a faster event loop, when installed
        except ImportError:
            if args.loop == "uvloop":
                parser.error("uvloop is not installed: pip install uvloop, or use --loop asyncio")
        else:
            uvloop.run(run(args))
            return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
