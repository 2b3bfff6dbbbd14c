"""The errors a gateway connection raises, and remote exceptions that keep their builtin type."""

from __future__ import annotations

import builtins


class GatewayError(Exception):
    """Base of every error the gateway raises on its own account."""


class ConnectionLost(GatewayError):
    """The connection closed or broke while a call was in flight."""


class GatewayTimeout(GatewayError):
    """No answer arrived within the connection's timeout."""


class AuthenticationError(GatewayError):
    """The handshake was refused (wrong or missing passphrase) or the server failed to prove itself."""


class ProtocolError(GatewayError):
    """The peer sent something that is not a valid frame or message."""


class RemoteError(GatewayError):
    """An exception raised by the code on the other side of the connection."""

    def __init__(self, remote_type: str, remote_message: str, remote_traceback: str = "") -> None:
        super().__init__(remote_type, remote_message, remote_traceback)
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        text = f"{self.remote_type}: {self.remote_message}"
        if self.remote_traceback:
            text += "\n--- remote traceback ---\n" + self.remote_traceback.rstrip()
        return text


_remote_error_classes: dict[str, type] = {}


def make_remote_error(remote_type: str, message: str, tb: str) -> RemoteError:
    """A RemoteError that is also an instance of the matching builtin exception, when one exists.

    So ``getattr(proxy, "x", None)``, ``hasattr``, ``except KeyError`` and the iteration protocol
    keep working across the connection.
    """
    cls = _remote_error_classes.get(remote_type)
    if cls is None:
        base = getattr(builtins, remote_type, None)
        cls = RemoteError
        if isinstance(base, type) and issubclass(base, Exception) and base is not Exception:
            try:
                cls = type("Remote" + remote_type, (RemoteError, base), {})
            except TypeError:  # instance layout conflict (OSError family): plain RemoteError
                cls = RemoteError
        _remote_error_classes[remote_type] = cls
    return cls(remote_type, message, tb)


def exception_type_name(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return exc.remote_type
    t = type(exc)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"

