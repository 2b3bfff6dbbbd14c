"""An HTTP server on a listening socket it was handed (``fd``), as an engine run with
``--bind fd://N`` is; it answers every GET with its pid and the path its socket is bound at.

``--unlink-at-term``: on SIGTERM, remove the socket's file and exit 0, as gunicorn does when it
stops. The trailing ``--tag`` is for the tests' leftover finder.
"""

import argparse
import http.server
import json
import os
import signal
import socket
import sys

parser = argparse.ArgumentParser()
parser.add_argument("fd", type=int)
parser.add_argument("--tag", default="")
parser.add_argument("--unlink-at-term", action="store_true")
args = parser.parse_args()

listening = socket.socket(fileno=args.fd)
bound = listening.getsockname()


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"pid": os.getpid(), "bound": bound}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args: object) -> None:
        pass


def on_term(signum: int, frame: object) -> None:
    if args.unlink_at_term:
        os.unlink(bound)
    sys.exit(0)


signal.signal(signal.SIGTERM, on_term)
server = http.server.HTTPServer(("", 0), Answer, bind_and_activate=False)
server.socket.close()
server.socket = listening
print(f"serving fd {args.fd} bound at {bound}", flush=True)
server.serve_forever()
