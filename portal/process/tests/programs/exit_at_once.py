"""Prints a line and exits with a failure at once (a server that cannot start)."""

import sys

print("cannot start: configuration is broken", flush=True)
sys.exit(3)
