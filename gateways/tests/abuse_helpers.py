"""Raw-socket peers for the server abuse tests: guessers, idle sockets, frames announced but not sent.

They speak the wire protocol by hand (no PBKDF2, no client library) so that a test can drive
hundreds of connections from one process, each bound to its own loopback address (127.0.0.x).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections import Counter

import msgpack

from gateways.protocol import KIND_AUTH, KIND_REFUSED, PROTOCOL_VERSION, auth_mac


def send_frame(sock: socket.socket, body: bytes) -> None:
    sock.sendall(struct.pack("!I", len(body)) + body)


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> bytes:
    (n,) = struct.unpack("!I", read_exact(sock, 4))
    return read_exact(sock, n)


def connect_from(source: str, host: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection whose peer address, as the server sees it, is ``source``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # RST on close: thousands of short connections must not exhaust ports in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def guess_once(source: str, host: str, port: int) -> str:
    """One handshake with a wrong key: "guess" when the server checked it ("authentication
    failed"), "limited" when it refused without checking, "error" when the connection broke."""
    try:
        sock = connect_from(source, host, port)
    except OSError:
        return "error"
    try:
        first = read_frame(sock)
        kind, _ = msgpack.unpackb(first)
        if kind == KIND_REFUSED:
            return "limited"
        cnonce = os.urandom(32)
        mac = auth_mac(b"not the key, 32 bytes long......", b"client", first, cnonce)
        send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": PROTOCOL_VERSION, "nonce": cnonce, "mac": mac}]))
        kind, answer = msgpack.unpackb(read_frame(sock))
        assert kind == KIND_REFUSED, (kind, answer)
        return "guess" if answer["error"] == "authentication failed" else "limited"
    except (OSError, ConnectionError, ValueError):
        return "error"
    finally:
        sock.close()


class Guessers:
    """``parallel`` threads guessing wrong passphrases from ``sources`` until stopped."""

    def __init__(self, host: str, port: int, sources: list[str], parallel: int = 200) -> None:
        self.counts: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(sources[i % len(sources)], host, port), daemon=True)
            for i in range(parallel)
        ]
        self.started = 0.0
        self.elapsed = 0.0

    def _run(self, source: str, host: str, port: int) -> None:
        while not self._stop.is_set():
            outcome = guess_once(source, host, port)
            with self._lock:
                self.counts[outcome] += 1

    def __enter__(self) -> Guessers:
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        self.elapsed = time.monotonic() - self.started

    def per_second(self) -> float:
        return self.counts["guess"] / self.elapsed
