"""Does the broker answer, and which Celery workers answer, on which hosts."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from django.conf import settings
from kombu.utils.url import maybe_sanitize_url


def redis_client(socket_timeout: float = 1.0) -> redis.Redis:
    """A client for REDIS_URL, which may use kombu's redis+socket:// form (password included)."""
    url = settings.REDIS_URL
    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://") :]
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)


def masked_url() -> str:
    """REDIS_URL as a page or a log may show it: its password (the embedded one, or an operator's) as **."""
    return maybe_sanitize_url(settings.REDIS_URL)


@dataclass
class Health:
    redis_ok: bool = False
    redis_error: str = ""
    redis_version: str = ""
    workers: list[dict[str, str]] = field(default_factory=list)
    workers_error: str = ""


def check(timeout: float = 1.0) -> Health:
    health = Health()
    try:
        client = redis_client(timeout)
        info = client.info("server")
        health.redis_ok = True
        health.redis_version = info.get("redis_version", "")
    except redis.RedisError as e:
        health.redis_error = f"The Redis broker at {masked_url()} does not answer ({e})."
        health.workers_error = "No broker, so no worker can be reached."
        return health
    from portal.celery import app

    try:
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except Exception as e:
        health.workers_error = f"Asking the workers failed: {e}"
        return health
    for name in sorted(replies):
        node, _, host = name.partition("@")
        health.workers.append({"name": name, "host": host or node})
    if not health.workers:
        health.workers_error = (
            "No Celery worker answered within a second: start one with `make run`, or see "
            "docs/operations.md for workers on other hosts."
        )
    return health
