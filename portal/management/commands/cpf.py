"""``manage.py cpf``: definitions as code.

    cpf merge FILE [--dry-run] [--restart] [--user NAME] [--json]
    cpf export [--gateways] [--applications] [--output FILE]

``merge`` reads a merge file (``-`` reads standard input) and applies it in one transaction,
or with ``--dry-run`` only says what it would create, modify and delete; it exits 1 and
changes nothing when any line is wrong, each problem named by its line and key.
``--restart`` stops running definitions whose runtime fields change, and starts them again.
``export`` writes every definition (or only the kinds named) as a merge file that ``merge``
accepts. See docs/operations.md, "Configuration as code".

Who acts: as for ``manage.py gateway``, ``--user NAME`` acts with that user's role; without
it the local operator acts as an administrator.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from portal.cli import actor_named
from portal.cpf import merge, registry
from portal.cpf.parser import MAX_FILE_BYTES, too_large
from portal.process.checks import path_too_long


def describe(result: merge.Result) -> list[str]:
    """The preview as lines of text (the page shows the same, as tables)."""
    lines = []
    for change in result.changes:
        what = f"{change.kind.label} {change.name} (line {change.line})"
        if change.op == "created":
            lines.append(f"Create {what}: " + ", ".join(f"{k}={a}" for k, _, a in change.fields))
        elif change.op == "modified":
            lines.append(f"Modify {what}" + (", stopping and starting it again" if change.restart else "") + ":")
            lines += [f"    {k}: {b} → {a}" for k, b, a in change.fields]
        elif change.op == "deleted":
            lines.append(f"Delete {what}")
        else:
            lines.append(f"Already as asked: {what}" + (f" ({change.note})" if change.note else ""))
        lines += [f"    warning: {w}" for w in change.warnings]
    return lines


class Command(BaseCommand):
    help = "Merge a merge file of definitions into the portal, or export the definitions as one."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--user", help="act as this portal user, with that user's role")
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        merge_ = sub.add_parser("merge", help="apply a merge file (or preview it with --dry-run)")
        merge_.add_argument("file", help="the merge file; - reads standard input")
        merge_.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
        merge_.add_argument("--restart", action="store_true",
                            help="stop running definitions whose runtime fields change, then start them again")
        merge_.add_argument("--json", action="store_true", help="print the outcome as JSON")
        merge_.add_argument("--user", dest="merge_user", help="act as this portal user (as --user before the action)")
        export = sub.add_parser("export", help="write the definitions as a merge file")
        for kind in registry.kinds():
            export.add_argument(f"--{kind.plural}", action="store_true", dest=f"kind_{kind.plural}",
                                help=f"only {kind.plural} (with no such option: every kind)")
        export.add_argument("--output", help="write to this file instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        user = actor_named(options.get("merge_user") or options.get("user"))
        try:
            if options["action"] == "merge":
                self.do_merge(user, options)
            else:
                self.do_export(user, options)
        except PermissionDenied as e:
            raise CommandError(str(e)) from None

    def do_merge(self, user: Any, options: dict[str, Any]) -> None:
        path = options["file"]
        try:
            data = _read_limited(path)
        except OSError as e:
            raise CommandError(f"Cannot read {path}: {e.strerror}. Give the path of a merge file.") from None
        result = merge.merge(data, user, apply=not options["dry_run"], restart=options["restart"])
        if options["json"]:
            self.stdout.write(json.dumps({**result.as_dict(), "dry_run": options["dry_run"]}, indent=2))
        else:
            for line in describe(result):
                self.stdout.write(line)
        if result.problems:
            problems = "\n".join(f"{path}: {p}" for p in result.problems)
            raise CommandError(f"Nothing was changed: fix these lines and merge again.\n{problems}")
        if options["json"]:
            return
        if options["dry_run"]:
            self.stdout.write(f"Dry run: nothing was changed ({result.summary} if applied).")
        else:
            self.stdout.write(f"Merged {path}: {result.summary}.")
            if result.restarted:
                self.stdout.write("Started again: " + ", ".join(result.restarted) + ".")

    def do_export(self, user: Any, options: dict[str, Any]) -> None:
        merge.require_viewer(user)
        chosen = [k for k in registry.kinds() if options.get(f"kind_{k.plural}")] or None
        text = merge.export(chosen)
        if options.get("output"):
            try:
                Path(options["output"]).write_text(text)
            except OSError as e:
                raise CommandError(f"Cannot write {options['output']}: {e.strerror}.") from None
        else:
            self.stdout.write(text, ending="")



def _read_limited(path: str) -> bytes:
    """The merge file, refused as the Merge page refuses one larger than MAX_FILE_BYTES: a regular
    file by its size before a byte is read, standard input or a pipe once one byte more has come."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        too_long = path_too_long(path)
        if too_long:
            raise CommandError(f"{too_long}.")
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
                raise CommandError(too_large(path, info.st_size))
            data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        what = "standard input" if path == "-" else path
        raise CommandError(too_large(what, len(data)).replace(f" has {len(data):,} bytes;",
                                                               f" has more than {MAX_FILE_BYTES:,} bytes;"))
    return data
