"""Run gunicorn on a listening unix socket the portal's keeper bound and handed down.

Run by path with the application's own interpreter (never imports the portal)::

    python portal_gunicorn_launch.py --fd N -- [GUNICORN OPTIONS] TARGET

gunicorn's ``--bind fd://N`` serves the descriptor, but when it stops it removes the file its
socket is bound at and fails (a traceback, exit status 1, its workers not told to finish) where it
may not: the socket lies in the keeper's run directory, which the application can neither read
nor write. Started through systemd's socket-activation protocol instead (the socket at
descriptor 3, ``LISTEN_FDS=1``, ``LISTEN_PID`` its own pid, which an exec keeps), gunicorn serves
the same descriptor and leaves the file to whoever made it, as it does under systemd; it removes
both variables from its environment before the application runs. Written by hand because it is
these four lines; this file's folder holds this file alone (it is ``sys.path[0]`` until the exec).
"""

from __future__ import annotations

import os
import sys

SD_LISTEN_FDS_START = 3  # where systemd's protocol puts the first socket


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] != "--fd" or not argv[1].isdigit():
        sys.exit("usage: portal_gunicorn_launch.py --fd N -- [GUNICORN OPTIONS] TARGET")
    fd = int(argv[1])
    rest = argv[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if fd != SD_LISTEN_FDS_START:
        os.dup2(fd, SD_LISTEN_FDS_START)  # inheritable, as the protocol wants
        os.close(fd)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
