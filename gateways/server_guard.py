"""What keeps the External Python Server standing under abuse: failed-handshake limits, log lines
that cannot be forged, and repeated events logged once per burst.

Part of the server, so it runs on any CPython 3.9+ and never imports Django or the portal.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import re
import socket
import time
from collections import OrderedDict
from typing import Any

log = logging.getLogger("gateways.server")

# Wrong passphrases: a peer address may fail PEER_BURST times at once, then once per 1/PEER_RATE
# seconds; the whole server SERVER_BURST times, then SERVER_RATE per second. So 200 parallel
# connections from one address get 5 guesses, then one every 2 s; many addresses together get 10,
# then one a second (addresses that authenticated before keep getting in, see FailureLimiter).
PEER_BURST = 5
PEER_RATE = 0.5
SERVER_BURST = 10
SERVER_RATE = 1.0
# How many addresses are remembered; beyond it new ones share one bucket (memory stays bounded).
MAX_TRACKED = 10_000
MAX_TRUSTED = 1024
# Addresses with a burst of their own in the log; beyond it they are summed up as "other addresses".
MAX_BURST_SOURCES = 256

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, the bidirectional overrides
# (which reorder what a viewer shows) and the backslash (so an escaped "\n" cannot be faked).
_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named:
        return named
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def printable(value: object) -> str:
    """``value`` as text with every control character escaped the way repr() does (``\\n``, ``\\x1b``)."""
    return _UNSAFE.sub(_escape, value if isinstance(value, str) else str(value))


class OneLineFormatter(logging.Formatter):
    """Every record is exactly one line of the log file, whatever a client put in it.

    Escaping here rather than at each call covers every log call, including the traceback of an
    unhandled error (whose message may quote client data) and calls added later: none can forget.
    """

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def peer_text(addr: Any) -> str:
    try:
        host, port = addr[0], addr[1]
    except (TypeError, IndexError):
        return str(addr)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_key(host: str) -> str:
    """The address a limit applies to: IPv4 as is, IPv6 by its /64 (one host usually owns a /64)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens, refilled at ``rate`` per second; a failure takes one."""

    def __init__(self, burst: float, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self._b: dict = {}  # key -> (tokens, monotonic time of that level)

    def level(self, key: str, now: float) -> float:
        entry = self._b.get(key)
        if entry is None:
            return self.burst
        tokens, stamp = entry
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def take(self, key: str, now: float) -> None:
        if key not in self._b and len(self._b) >= MAX_TRACKED:
            self.prune(now)
            if len(self._b) >= MAX_TRACKED:
                key = "*"
        self._b[key] = (max(0.0, self.level(key, now) - 1), now)

    def retry_after(self, key: str, now: float) -> int:
        return max(1, math.ceil((1 - self.level(key, now)) / self.rate))

    def prune(self, now: float) -> None:
        for key in [k for k in self._b if self.level(k, now) >= self.burst]:
            del self._b[key]


class FailureLimiter:
    """Failed handshakes per peer address and per server.

    A peer whose bucket is empty is refused before its answer is checked, so its guesses cost it
    time without telling it anything. When the server's bucket is empty (many addresses guessing),
    only addresses that authenticated before are still checked: a distributed attack can slow new
    clients down, but neither guess faster nor lock out the portal and the clients it knows.
    """

    def __init__(self) -> None:
        self.peers = TokenBuckets(PEER_BURST, PEER_RATE)
        self.server = TokenBuckets(SERVER_BURST, SERVER_RATE)
        self.trusted: OrderedDict = OrderedDict()

    def refusal(self, key: str, now: float) -> str | None:
        """Why a handshake from ``key`` is refused unchecked now, or None."""
        if self.peers.level(key, now) < 1:
            return (f"authentication refused: too many failed attempts from {key}; "
                    f"try again in {self.peers.retry_after(key, now)} s")
        if key not in self.trusted and self.server.level("", now) < 1:
            return (f"authentication refused: too many failed attempts on this server; "
                    f"try again in {self.server.retry_after('', now)} s")
        return None

    def failed(self, key: str, now: float) -> None:
        self.peers.take(key, now)
        self.server.take("", now)

    def succeeded(self, key: str) -> None:
        self.trusted[key] = True
        self.trusted.move_to_end(key)
        if len(self.trusted) > MAX_TRUSTED:
            self.trusted.popitem(last=False)

    def prune(self, now: float) -> None:
        self.peers.prune(now)


class BurstLog:
    """Repeated events from one source: the first is logged at once, the rest counted and summed
    up every ``window`` seconds, and a source that went quiet for a whole window starts afresh.

    So a mistyped passphrase shows at once, and 10,000 guesses make two lines, not 10,000.
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._active: dict = {}  # (category, source) -> {reason: count} since the last flush
        self.last_flush = time.monotonic()

    def note(self, category: str, source: str, reason: str, first_line: str) -> None:
        key = (category, source)
        counts = self._active.get(key)
        if counts is None:
            if len(self._active) >= MAX_BURST_SOURCES:
                key = (category, "other addresses")
                counts = self._active.setdefault(key, {})
            else:
                self._active[key] = {}
                log.warning("%s (repeats from %s are summed up every %g s)", first_line, source or "anywhere",
                            self.window)
                return
        counts[reason] = counts.get(reason, 0) + 1

    def flush(self) -> None:
        now = time.monotonic()
        elapsed, self.last_flush = max(1, round(now - self.last_flush)), now
        for key, counts in list(self._active.items()):
            if not counts:
                del self._active[key]
                continue
            category, source = key
            detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
            log.warning("%d %s%s in the last %d s (%s)", sum(counts.values()), category,
                        f" from {source}" if source else "", elapsed, detail)
            self._active[key] = {}


def raise_file_limit(needed: int) -> None:
    """Every connection is a file descriptor: lift the soft limit as far as the caps need, if allowed."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Linux
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Handshake:
    """A connection between accept and welcome. The listener's thread serves it with non-blocking
    reads, so an unauthenticated peer costs a socket and a small buffer, never a thread."""

    __slots__ = ("addr", "buf", "deadline", "hello_frame", "key", "opened", "peer", "refusal", "refuse_at",
                 "sock")

    def __init__(self, sock: socket.socket, addr: Any, now: float, deadline: float) -> None:
        self.sock = sock
        self.addr = addr
        self.peer = peer_text(addr)
        self.key = peer_key(str(addr[0]))
        self.opened = now
        self.deadline = deadline
        self.buf = bytearray()
        self.hello_frame = b""
        self.refuse_at = 0.0  # a wrong passphrase is answered after a short delay, without a thread
        self.refusal = ""
