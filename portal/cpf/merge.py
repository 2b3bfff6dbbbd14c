"""Merging a merge file into the portal, and exporting the definitions as one.

What a merge does, for every kind of definition registered in portal/cpf/registry.py:

- ``Create<Kind>`` creates the definition; when it exists already it sets the keys the line
  gives, as ``Modify<Kind>`` does, so a file can be merged again and again.
- ``Modify<Kind>`` sets the keys the line gives and keeps the others; the definition must exist.
- ``Delete<Kind>`` deletes it; a definition that does not exist is already as asked.

All or nothing: every action runs, through the kind's own form and service, inside one
transaction, and one problem anywhere rolls all of them back. A dry run is the same run,
always rolled back, so its preview knows what each line does after the lines above it (two
new gateways on one port are refused, as two saves would be). Merges run one at a time: the
transaction takes SQLite's write lock at its start (IMMEDIATE) or, on PostgreSQL, an advisory
lock, so a second merge reads what the first wrote.

A change of a running definition's runtime fields is refused, as the form refuses it, unless
the merge is asked to restart: then the definitions concerned are stopped first (through the
kind's control service, recorded in its Activity), the merge runs, and they are started
again, whether the merge applied or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from portal import audit, roles
from portal.cpf import registry
from portal.cpf.parser import MergeFileError, Problem, parse, write
from portal.cpf.registry import NAME, Kind, ValueProblem

SOURCE = "cpf merge"
# Any number that no other part of the portal uses as an advisory lock.
PG_LOCK = 0x43504621
CHANGED_SECRET = "(changed, not shown)"


@dataclass
class Change:
    line: int
    verb: str
    kind: Kind
    name: str
    op: str  # created, modified, deleted or unchanged
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # key, before, after
    restart: bool = False
    warnings: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "kind": self.kind.label,
            "name": self.name,
            "fields": {key: {"before": before, "after": after} for key, before, after in self.fields},
            "restart": self.restart,
            "warnings": self.warnings,
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class Result:
    changes: list[Change] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    applied: bool = False
    restarted: list[str] = field(default_factory=list)

    OPS = ("created", "modified", "deleted", "unchanged")

    def of(self, op: str) -> list[Change]:
        return [c for c in self.changes if c.op == op]

    @property
    def counts(self) -> dict[str, int]:
        return {op: len(self.of(op)) for op in self.OPS}

    @property
    def summary(self) -> str:
        c = self.counts
        return (f"{c['created']} created, {c['modified']} modified, {c['deleted']} deleted, "
                f"{c['unchanged']} already as asked")

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            **{op: [c.as_dict() for c in self.of(op)] for op in self.OPS},
            "restarted": self.restarted,
            "problems": [{"line": p.line, "key": p.key, "message": p.message} for p in self.problems],
            "summary": self.summary,
        }


class _Rollback(Exception):
    pass


def require_admin(user: Any) -> None:
    if not roles.can_administer(user):
        raise PermissionDenied(
            "Only an Administrator may merge definitions; ask an administrator for that role."
        )


def require_viewer(user: Any) -> None:
    if not roles.can_view(user):
        raise PermissionDenied("Your account has no role: ask an administrator.")


def merge(data: bytes | str, user: Any, *, apply: bool = False, restart: bool = False) -> Result:
    """Read ``data`` and preview (``apply=False``) or apply it. Never raises for a bad file:
    the problems are in the result, and nothing has changed."""
    require_admin(user)
    try:
        document = parse(data, registry.schema())
    except MergeFileError as e:
        return Result(problems=[Problem(1, str(e))])
    if document.problems:
        # Every problem in one pass: the lines that read well are checked as a dry run would check
        # them (the lines with a problem of form are left out: their values are not what was meant,
        # and would only add problems of their own), and nothing is applied.
        bad = {p.line for p in document.problems}
        checked = _run([a for a in document.actions if a.line not in bad], user, restart=restart, commit=False)
        return Result(problems=sorted([*document.problems, *checked.problems], key=lambda p: p.line))
    if not apply:
        return _run(document.actions, user, restart=restart, commit=False)
    if not restart:
        return _run(document.actions, user, restart=False, commit=True)
    preview = _run(document.actions, user, restart=True, commit=False)
    if preview.problems:
        return preview
    stopped: list[Change] = []
    result = Result()
    try:
        for change in (c for c in preview.changes if c.restart):
            try:
                change.kind.adapter.stop(change.kind.adapter.find(change.name), user)
            except Exception as e:  # the control service's refusal (a timeout, no broker) says what to do
                result.problems.append(Problem(change.line, f"{change.name} could not be stopped: {e}", NAME))
                break
            stopped.append(change)
        else:
            result = _run(document.actions, user, restart=False, commit=True)
    finally:
        for change in stopped:
            obj = change.kind.adapter.find(change.name)
            if obj is not None:
                change.kind.adapter.start(obj, user)
                result.restarted.append(change.name)
    return result


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PG_LOCK])


def _prechecks(actions: list[Any], result: Result) -> None:
    """The kinds' slow checks, before the transaction (see Adapter.precheck)."""
    memos: dict[str, dict[Any, Any]] = {}
    found: dict[str, dict[str, Any]] = {}  # by kind: the definitions the lines name, read at once
    for action in actions:
        kind, op = registry.verb_of(action.verb)
        if op == "delete" or type(kind.adapter).precheck is registry.Adapter.precheck:
            continue  # nothing slow to check for this kind
        try:
            values = {key: kind.key(key).convert(text) for key, text in action.values.items()}
        except ValueProblem:
            continue  # the merge itself reports it
        name = action.values.get(NAME, "").strip()
        if kind.noun not in found:
            names = [a.values.get(NAME, "").strip() for a in actions if registry.verb_of(a.verb)[0] is kind]
            found[kind.noun] = kind.adapter.find_many([n for n in names if n])
        obj = found[kind.noun].get(name.lower()) if name else None
        if op == "modify" and obj is None:
            continue
        for key, messages in kind.adapter.precheck(obj, values, memos.setdefault(kind.noun, {})).items():
            result.problems += [Problem(action.line, message, key) for message in messages]


def _run(actions: list[Any], user: Any, *, restart: bool, commit: bool) -> Result:
    result = Result()
    _prechecks(actions, result)
    try:
        with transaction.atomic():
            _lock()
            _apply_all(actions, user, result, restart=restart, commit=commit)
            if result.problems or not commit:
                raise _Rollback
    except _Rollback:
        pass
    result.problems.sort(key=lambda p: p.line)  # the prechecks' come first; the file's order reads best
    result.applied = commit and not result.problems
    return result


def _apply_all(actions: list[Any], user: Any, result: Result, *, restart: bool, commit: bool) -> None:
    actor = f"{audit.actor_name(user)} ({SOURCE})"
    seen: dict[tuple[str, str], int] = {}
    # Each definition is named on one line only (a second line is refused below), so what the
    # lines above do never changes what this lookup found for it: one query per kind.
    existing: dict[str, dict[str, Any]] = {}
    for kind in registry.kinds():
        names = [a.values.get(NAME, "").strip() for a in actions if registry.verb_of(a.verb)[0] is kind]
        existing[kind.noun] = kind.adapter.find_many([n for n in names if n])
    sessions = {kind.noun: kind.adapter.session() for kind in registry.kinds()}
    _each_action(actions, user, result, restart=restart, commit=commit, actor=actor, seen=seen,
                 existing=existing, sessions=sessions)
    if not result.problems and commit:
        # A dry run writes nothing the saves left to the end: what each line does after the lines
        # above it is already known (the sessions keep it), and the transaction is rolled back.
        for kind in registry.kinds():
            kind.adapter.finish(sessions[kind.noun])


def _each_action(actions: list[Any], user: Any, result: Result, *, restart: bool, commit: bool, actor: str,
                 seen: dict[tuple[str, str], int], existing: dict[str, dict[str, Any]],
                 sessions: dict[str, Any]) -> None:
    for action in actions:
        kind, op = registry.verb_of(action.verb)
        adapter = kind.adapter
        session = sessions[kind.noun]
        values: dict[str, Any] = {}
        bad = False
        for key, text in action.values.items():
            try:
                values[key] = kind.key(key).convert(text)
            except ValueProblem as e:
                result.problems.append(Problem(action.line, str(e), key))
                bad = True
        name = action.values.get(NAME, "").strip()
        if not name:
            result.problems.append(Problem(action.line, f"the {kind.label} has no name: give {NAME}=….", NAME))
            continue
        first = seen.setdefault((kind.noun, name.lower()), action.line)
        if first != action.line:
            result.problems.append(Problem(
                action.line, f"{kind.label} {name} is already on line {first}: merge one line per "
                             f"definition (put every key on that line).", NAME))
            continue
        if bad:
            continue
        obj = existing[kind.noun].get(name.lower())
        change = Change(action.line, action.verb, kind, adapter.name_of(obj) if obj is not None else name, "")
        if op == "delete":
            _delete(change, obj, user, actor, result, session)
            continue
        if op == "modify" and obj is None:
            result.problems.append(Problem(
                action.line, f"there is no {kind.label} named {name}: create it with Create{kind.noun}.", NAME))
            continue
        if obj is not None and _as_written(kind, action.values, adapter.shown(obj)):
            # Every key already reads as the line writes it: nothing to validate or save. (A value
            # written another way, such as Server=LOCALHOST, goes through the form, which says.)
            change.op = "unchanged"
            result.changes.append(change)
            continue
        form = adapter.form(obj, values, quick=True, session=session)
        valid = form.is_valid()
        problems = adapter.field_problems(form)
        if not valid or problems:
            for key, messages in problems.items():
                for message in messages:
                    result.problems.append(Problem(action.line, message, key))
            continue
        before = adapter.shown(obj) if obj is not None else {}
        after = adapter.shown(form.instance)
        change.name = adapter.name_of(form.instance)
        keys = [*after, *(k for k in before if k not in after)]
        change.fields = [(k, before.get(k, ""), after.get(k, "")) for k in keys
                         if obj is None or before.get(k) != after.get(k)]
        change.fields += [(k, "", CHANGED_SECRET) for k in adapter.secret_changes(form)]
        if obj is not None and not change.fields:
            change.op = "unchanged"
            result.changes.append(change)
            continue
        change.warnings = list(getattr(form, "warnings", []))
        change.op = "modified" if obj is not None else "created"
        runtime = adapter.runtime_keys()
        touched = {k for k, _, _ in change.fields
                   if k in runtime or any(p.endswith(".") and k.startswith(p) for p in runtime)}
        if obj is not None and touched and adapter.is_active(obj):
            if not restart:
                result.problems.append(Problem(
                    action.line,
                    f"{change.name} is running: stop it first, or merge with restart (--restart, the page's "
                    f"“Restart running definitions”, or ?restart=1) to stop, change and start it again.",
                    sorted(touched)[0]))
                continue
            change.restart = True
            if not commit:
                # Its save would be refused while it runs: the preview says it will be restarted.
                result.changes.append(change)
                continue
        try:
            adapter.save(form, user, actor, session=session)
        except ValueProblem as e:
            result.problems.append(Problem(action.line, str(e), NAME))
            continue
        result.changes.append(change)


def _as_written(kind: Kind, given: dict[str, str], shown: dict[str, str]) -> bool:
    for key, text in given.items():
        spec = kind.key(key)
        if spec.secret:
            return False  # only the form can tell whether a secret file holds the same secret
        if spec.is_prefix:
            group = {k: v for k, v in shown.items() if k.startswith(spec.name)}
            if group != {k: v for k, v in given.items() if k.startswith(spec.name)}:
                return False
        elif key != NAME and shown.get(key) != text:
            return False
    return True


def _delete(change: Change, obj: Any, user: Any, actor: str, result: Result, session: Any) -> None:
    adapter = change.kind.adapter
    if obj is None:
        change.op, change.note = "unchanged", f"no {change.kind.label} of that name"
        result.changes.append(change)
        return
    blocker = adapter.delete_blocker(obj)
    if blocker:
        result.problems.append(Problem(change.line, blocker, NAME))
        return
    change.fields = [(k, v, "") for k, v in adapter.shown(obj).items()]
    try:
        adapter.delete(obj, user, actor, session=session)
    except ValueProblem as e:
        result.problems.append(Problem(change.line, str(e), NAME))
        return
    change.op = "deleted"
    result.changes.append(change)


def _and(words: list[str]) -> str:
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]


def export(selected: list[Kind] | None = None) -> str:
    """The definitions as a merge file that :func:`merge` accepts (one Create line each)."""
    chosen = selected if selected is not None else registry.kinds()
    items: list[Any] = []
    for kind in chosen:
        for obj in kind.adapter.all():
            values, notes = kind.adapter.export(obj)
            items += notes
            items.append((f"Create{kind.noun}", values))
    header = [
        f"{_and([k.heading or k.plural for k in chosen]).capitalize() or 'Nothing'} exported by the portal "
        f"on {timezone.localdate():%Y-%m-%d}.",
        "Apply with: manage.py cpf merge FILE (or the Merge page, or POST /api/cpf/merge?apply=1).",
    ]
    return write(items, header=header)
