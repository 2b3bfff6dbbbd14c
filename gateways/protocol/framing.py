"""Frames: a 4-byte big-endian length, then that many bytes; and the socket options they ride on."""

from __future__ import annotations

import socket
import struct

from gateways.protocol.errors import ConnectionLost, GatewayTimeout, ProtocolError

DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
_HDR = struct.Struct("!I")
# A receive buffer grown past this by a large frame goes back to the initial size once drained.
_SHRINK_ABOVE = 1024 * 1024
_INITIAL_BUFFER = 65536
RECV_TIMEOUT_TEXT = "timed out waiting for the peer"


class FrameSocket:
    """Length-prefixed frames over a socket, reading with recv_into into one reusable buffer.

    Hand-written rather than socket.makefile(): a buffered file object costs an extra copy and
    cannot refuse an oversized length prefix before reading it.
    """

    __slots__ = ("_buf", "_end", "_start", "_view", "frames_in", "frames_out", "max_frame", "sock")

    def __init__(self, sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self._buf = bytearray(65536)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self.frames_in = 0
        self.frames_out = 0

    def send(self, body: bytes) -> None:
        # One sendall per frame: header and body leave in the same segment (TCP_NODELAY is set).
        try:
            self.sock.sendall(_HDR.pack(len(body)) + body)
        except socket.timeout:
            raise GatewayTimeout("timed out sending a frame") from None
        except OSError as exc:
            raise ConnectionLost(f"connection lost while sending: {exc}") from None
        self.frames_out += 1

    def prime(self, data: bytes) -> None:
        """Bytes read from the socket before this FrameSocket took it over (the end of a handshake read)."""
        end = self._end + len(data)
        if end > len(self._buf):
            self._view.release()
            self._buf = self._buf[:self._end] + bytearray(max(end - self._end, len(self._buf)))
            self._view = memoryview(self._buf)
        self._buf[self._end:end] = data
        self._end = end

    def recv(self) -> memoryview:
        """The next frame's body; valid only until the next recv()."""
        start, end = self._start, self._end
        if start == end:
            # Drained, as after nearly every frame of a call: read from the front again, so the
            # next read takes the whole buffer without slicing a view and no partial frame ever
            # needs moving. A buffer grown by a large frame goes back to its initial size here.
            start = end = 0
            if len(self._buf) > _SHRINK_ABOVE:
                self._view.release()
                self._buf = bytearray(_INITIAL_BUFFER)
                self._view = memoryview(self._buf)
        while True:
            avail = end - start
            if avail >= 4:
                (n,) = _HDR.unpack_from(self._buf, start)
                # Checked from the length prefix alone, before a byte of the body is read or room made.
                if n > self.max_frame:
                    self._start, self._end = start, end
                    raise ProtocolError(f"frame of {n} bytes exceeds the limit of {self.max_frame} bytes")
                if avail >= 4 + n:
                    self._start = start + 4 + n
                    self._end = end
                    self.frames_in += 1
                    return self._view[start + 4:start + 4 + n]
                need = 4 + n
            else:
                need = 4
            size = len(self._buf)
            if start + need > size:
                if start:
                    # Move the partial frame to the front.
                    self._buf[:avail] = self._buf[start:end]
                    start, end = 0, avail
                if end == size:
                    # Full: double, but never past the (checked) frame length. The buffer grows with
                    # the bytes that actually arrive, not with what a header merely announces, so a
                    # peer announcing 64 MiB and sending 100 bytes costs 64 KiB, not 64 MiB.
                    self._view.release()
                    newbuf = bytearray(min(need, 2 * size))
                    newbuf[:end] = self._buf[:end]
                    self._buf = newbuf
                    self._view = memoryview(newbuf)
            try:
                k = self.sock.recv_into(self._view[end:] if end else self._view)
            except socket.timeout:
                self._start, self._end = start, end
                raise GatewayTimeout(RECV_TIMEOUT_TEXT) from None
            except BlockingIOError:  # SO_RCVTIMEO expired on a blocking socket
                self._start, self._end = start, end
                raise GatewayTimeout(RECV_TIMEOUT_TEXT) from None
            except OSError as exc:
                raise ConnectionLost(f"connection lost: {exc}") from None
            if not k:
                raise ConnectionLost("connection closed by peer" if avail == 0 else "connection closed mid-frame")
            end += k


def frame_bytes(body: bytes) -> bytes:
    """Header and body of one frame, for senders that do not go through a FrameSocket."""
    return _HDR.pack(len(body)) + body


def tune_socket(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_recv_timeout(sock: socket.socket, timeout: float | None) -> None:
    """A kernel receive timeout on a blocking socket.

    socket.settimeout() would make CPython poll() before every recv, one extra system call per
    round trip on the hot path; SO_RCVTIMEO costs nothing until it fires. Falls back to
    settimeout() where the option cannot be set.
    """
    sock.settimeout(None)
    if timeout is None:
        return
    # 0 clears a timeout set earlier (the kernel reads zero as "wait for ever").
    sec = int(timeout)
    usec = int((timeout - sec) * 1_000_000)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, usec))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", sec, usec))
    except (OSError, struct.error):
        sock.settimeout(timeout or None)


def set_wait_timeout(sock: socket.socket, timeout: float) -> None:
    """Change only the receive timeout that set_recv_timeout() set (0 for none): one system call.

    For the server's callbacks, which lift the idle timeout while the client answers and put it
    back after: the send timeout stays as it was, so each callback costs two setsockopt calls
    rather than four, and no settimeout() of the socket object.
    """
    if sock.gettimeout() is not None:  # set_recv_timeout() fell back to settimeout()
        sock.settimeout(timeout or None)
        return
    sec = int(timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, int((timeout - sec) * 1_000_000)))
