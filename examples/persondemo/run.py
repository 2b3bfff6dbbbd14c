"""The seed's PersonDemo walk-through against a running External Python Server.

    python examples/persondemo/run.py [--host 127.0.0.1] [--port 25001] [--passphrase-file F]

The passphrase is the first line of --passphrase-file, else the GATEWAY_PASSPHRASE
environment variable; with neither, none is sent (a gateway created without a passphrase,
which any local user can use). It is never taken from the command line, where `ps` shows
it to every local user. Run it with the portal's interpreter, which has msgpack:

    .venv/bin/python examples/persondemo/run.py --port 25001 --passphrase-file ~/.pygate-passphrase

Prints:

    Default values: name: Tom, age: 5
    Changed values: name: George, age: 99, employer: InterSystems
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)  # the project root, for gateways.client

try:
    from gateways.client import (  # imported after the sys.path line above
        AuthenticationError,
        ConnectionLost,
        GatewayError,
        connect,
    )
except ModuleNotFoundError as exc:  # e.g. the system python3, which has no msgpack
    venv_python = os.path.join(ROOT, ".venv", "bin", "python")
    if os.path.exists(venv_python):
        fix = "run it with the portal's virtualenv:\n\n    " + shlex.join([venv_python, *sys.argv])
    else:
        fix = ("create the portal's virtualenv first (`make setup` in " + ROOT + "), then run:\n\n    "
               + shlex.join([venv_python, *sys.argv]))
    sys.exit(f"run.py: this Python ({sys.executable}) lacks the module {exc.name!r} that the gateway "
             f"client needs; {fix}")


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=25001)
    p.add_argument("--passphrase-file")
    args = p.parse_args(argv)
    passphrase = os.environ.get("GATEWAY_PASSPHRASE") or None
    source = "GATEWAY_PASSPHRASE"
    if args.passphrase_file:
        passphrase = read_passphrase(args.passphrase_file)
        if passphrase is None:
            return 2
        source = args.passphrase_file
    try:
        gateway = connect(args.host, args.port, passphrase=passphrase)
    except AuthenticationError as exc:
        print(f"run.py: {authentication_advice(str(exc), passphrase, source)}", file=sys.stderr)
        return 1
    except ConnectionLost as exc:
        print(f"run.py: {exc}\nrun.py: no gateway answers on {args.host}:{args.port}: start the gateway in "
              "the portal (Gateways → Start), or give its host and port with --host and --port.",
              file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 1
    try:
        with gateway:
            gateway.add_to_class_path([os.path.join(HERE, "PersonDemo.py")])
            person = gateway.new("PersonDemo.Person")
            print("Default values: " + person.displayPerson())
            person.name = "George"
            person.age = 99
            print("Changed values: " + person.displayPerson() + ", " + person.company.displayEmployer())
    except GatewayError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 1
    return 0


def read_passphrase(path: str) -> str | None:
    """The first line of ``path``, or None after saying on stderr why it cannot be the passphrase."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        print(f"run.py: cannot read the passphrase file {path}: {exc.strerror or exc}; give --passphrase-file "
              "a file whose first line is the gateway's passphrase (or set GATEWAY_PASSPHRASE).", file=sys.stderr)
        return None
    except UnicodeDecodeError:
        print(f"run.py: the passphrase file {path} is not UTF-8 text: write the passphrase on its first line.",
              file=sys.stderr)
        return None
    passphrase = text.splitlines()[0] if text else ""
    if not passphrase:
        print(f"run.py: the passphrase file {path} is empty: write the gateway's passphrase on its first line.",
              file=sys.stderr)
        return None
    return passphrase


def authentication_advice(error: str, passphrase: str | None, source: str) -> str:
    """What went wrong in the handshake, in the terms of how the passphrase was given."""
    if passphrase is None:
        return (f"authentication failed: {error}; give the gateway's passphrase with --passphrase-file FILE "
                "(its first line) or the GATEWAY_PASSPHRASE environment variable.")
    if "does not use a passphrase" in error:
        return (f"authentication failed: this gateway has no passphrase, but {source} gave one; "
                "run without --passphrase-file and GATEWAY_PASSPHRASE.")
    return f"authentication failed: the passphrase in {source} is not this gateway's."


if __name__ == "__main__":
    sys.exit(main())
