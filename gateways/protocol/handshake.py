"""What the handshake needs: the passphrase verifier, the proofs both sides send, the hello's
server description, and the limits that hold until a peer is authenticated.

The exchange itself (hello, auth, welcome or refused) is driven by the client and by
gateways.server_guard; docs/gateway-protocol.md describes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import platform
import sys

from gateways.protocol.wire import PROTOCOL_VERSION

# Before authentication only the tiny handshake frames are legal: an unauthenticated peer must
# not be able to make the server buffer megabytes by announcing a large frame.
HANDSHAKE_MAX_FRAME_BYTES = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0  # the whole handshake; the server's --handshake-timeout default
DEFAULT_ITERATIONS = 200_000
# A hostile server could announce absurd PBKDF2 iterations to burn the client's CPU.
MAX_ITERATIONS = 10_000_000
VERIFIER_PREFIX = "pbkdf2_sha256"


def derive_key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, iterations, dklen=32)


def make_verifier(passphrase: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """The string the portal stores instead of the passphrase: ``pbkdf2_sha256$<it>$<salt>$<key>``."""
    if salt is None:
        salt = os.urandom(16)
    if iterations < 1:
        raise ValueError("iterations must be positive")
    key = derive_key(passphrase, salt, iterations)
    return "$".join(
        (VERIFIER_PREFIX, str(iterations), base64.b64encode(salt).decode(), base64.b64encode(key).decode())
    )


def is_verifier(s: str) -> bool:
    return s.startswith(VERIFIER_PREFIX + "$")


def parse_verifier(s: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, key) from a verifier string; ValueError when it is malformed."""
    parts = s.strip().split("$")
    if len(parts) != 4 or parts[0] != VERIFIER_PREFIX:
        raise ValueError("not a pbkdf2_sha256 verifier")
    try:
        iterations = int(parts[1])
        salt = base64.b64decode(parts[2], validate=True)
        key = base64.b64decode(parts[3], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"malformed verifier: {exc}") from None
    if iterations < 1 or not salt or len(key) != 32:
        raise ValueError("malformed verifier")
    return iterations, salt, key


def auth_mac(key: bytes, role: bytes, hello_frame: bytes, client_nonce: bytes) -> bytes:
    """HMAC over the whole hello frame (version, salt, server nonce) and the client's nonce.

    ``role`` differs for the client's and the server's proof so one cannot be replayed as the other.
    """
    return hmac.new(key, b"gateway-auth-v1|" + role + b"|" + hello_frame + client_nonce, hashlib.sha256).digest()


def server_info() -> dict:
    return {
        "protocol": PROTOCOL_VERSION,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pid": os.getpid(),
        "executable": sys.executable,
    }

