"""The seed's PersonDemo walk-through against a running External Python Server.

    python examples/persondemo/run.py [--host 127.0.0.1] [--port 55001] [--passphrase-file F]

The passphrase may also come from GATEWAY_PASSPHRASE (the file wins). Prints:

    Default values: name: Tom, age: 5
    Changed values: name: George, age: 99, employer: InterSystems
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the project root, for gateways.client

from gateways.client import (  # imported after the sys.path line above
    GatewayError,
    connect,
)


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=55001)
    p.add_argument("--passphrase-file")
    args = p.parse_args(argv)
    passphrase = os.environ.get("GATEWAY_PASSPHRASE") or None
    if args.passphrase_file:
        with open(args.passphrase_file, encoding="utf-8") as f:
            passphrase = f.read().rstrip("\r\n")
    try:
        with connect(args.host, args.port, passphrase=passphrase) as gateway:
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


if __name__ == "__main__":
    sys.exit(main())
