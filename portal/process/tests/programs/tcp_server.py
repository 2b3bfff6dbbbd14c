"""A tiny TCP server for the keeper's tests; behaviour chosen by options.

The trailing ``--tag`` argument is not used by the program: it puts the test's
temporary path into every command line so that a fixture can find leftovers.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--tag", default="")
parser.add_argument("--delay", type=float, default=0.0, help="seconds before listening")
parser.add_argument("--lines", type=int, default=0, help="numbered lines to print at start")
parser.add_argument("--print-env", default=None, help="print this variable's value")
parser.add_argument("--chatty", type=int, default=0, help="bytes of output per 10 ms")
parser.add_argument("--grandchild", action="store_true", help="start a sleeper in our group")
parser.add_argument("--escaped-grandchild", action="store_true", help="start a sleeper in a new session")
parser.add_argument("--ignore-term", action="store_true")
parser.add_argument("--exit-after", type=float, default=None, help="exit with --exit-code after this long")
parser.add_argument("--exit-code", type=int, default=0)
args = parser.parse_args()

if args.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

sleeper = [sys.executable, "-c", "import time; time.sleep(600)", "--tag", args.tag]
if args.grandchild:
    p = subprocess.Popen(sleeper, stdin=subprocess.DEVNULL)
    print(f"grandchild {p.pid}", flush=True)
if args.escaped_grandchild:
    p = subprocess.Popen(sleeper, stdin=subprocess.DEVNULL, start_new_session=True)
    print(f"escaped grandchild {p.pid}", flush=True)
for i in range(args.lines):
    print(f"line {i + 1}", flush=True)
if args.print_env:
    print(f"env {args.print_env}={os.environ.get(args.print_env)}", flush=True)

time.sleep(args.delay)
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", args.port))
server.listen(16)
server.settimeout(0.01)
print(f"listening on 127.0.0.1:{args.port}", flush=True)

started = time.monotonic()
chunk = ("x" * 99 + "\n") * max(1, args.chatty // 100)
while True:
    if args.exit_after is not None and time.monotonic() - started >= args.exit_after:
        sys.exit(args.exit_code)
    try:
        conn, _ = server.accept()
        conn.close()
    except TimeoutError:
        pass
    if args.chatty:
        sys.stdout.write(chunk)
        sys.stdout.flush()
