"""The kinds of definitions a merge file can create, modify and delete (no Django here).

Each app registers its kind from its AppConfig.ready() (gateways/cpf.py, webapps/cpf.py): a
noun (``Gateway`` gives the verbs CreateGateway, ModifyGateway and DeleteGateway), its table
of keys (the merge file's key, the form field it fills, how its text becomes the field's
value) and an adapter that finds, validates, saves and deletes definitions through the app's
own form and service, so a merge gets the same checks and history as the pages. The portal
knows no app: it only reads this registry.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.cpf.parser import Schema, VerbSpec
from portal.process.checks import path_too_long

NAME = "Name"
# A secret is one line; a file much larger than that is the wrong file.
MAX_SECRET_FILE = 4096


class ValueProblem(ValueError):
    """A value a key cannot take; the message says what to write instead."""


def portal_files() -> Path:
    from portal import paths  # Django-free: the folder of the database, the secret key, the run files

    return Path(os.path.realpath(paths.VAR_DIR))


def read_secret_file(path: str, what: str, refuse_under: Iterable[Path] | None = None) -> str:
    """The first line of ``path`` (a passphrase, a secret variable); ValueProblem, never quoting
    the content, when it cannot be used. The file is read by the portal's user, on its host."""
    if not os.path.isabs(path):
        raise ValueProblem(f"give the full path of the {what} file, not “{path}”.")
    too_long = path_too_long(path)
    if too_long:
        raise ValueProblem(f"{too_long}.")
    real = Path(os.path.realpath(path))
    for root in [portal_files()] if refuse_under is None else refuse_under:
        if real == root or root in real.parents:
            # The portal's own files (its database, secret key) are no one's passphrase.
            raise ValueProblem(f"{path} is one of the portal's own files (in {root}): keep the {what} in a file "
                               "of its own outside that folder.")
    try:
        # O_NONBLOCK: a FIFO or a device named here must not hang the merge; only a regular file is read.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise ValueProblem(f"{path} cannot be read by the portal's user ({e.strerror}): "
                           "name a file that user can read.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueProblem(f"{path} is not a regular file: name a file whose first line is the {what}.")
        if info.st_size > MAX_SECRET_FILE:
            raise ValueProblem(f"{path} is larger than {MAX_SECRET_FILE} bytes: a {what} file holds "
                               f"the {what} on its first line and nothing else.")
        data = os.read(fd, MAX_SECRET_FILE + 1)
    finally:
        os.close(fd)
    try:
        first = data.decode("utf-8").split("\n")[0].rstrip("\r")
    except UnicodeDecodeError:
        raise ValueProblem(f"{path} is not UTF-8 text: write the {what} as text on its first line.") from None
    if not first:
        raise ValueProblem(f"the first line of {path} is empty: put the {what} on the first line.")
    return first


def quoted(value: str, limit: int = 60) -> str:
    """A value as a message quotes it: a long one is cut, so the message stays readable."""
    return f"“{value if len(value) <= limit else value[:limit] + '…'}”"


def text(value: str) -> str:
    return value


def shown_value(value: Any) -> str:
    """A definition's value as a merge file writes it: a flag as 1 or 0, nothing for None."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def integer(low: int, high: int, example: int | None = None) -> Callable[[str], int]:
    def convert(value: str) -> int:
        if not value.strip().lstrip("+-").isdigit() or not value.isascii():
            raise ValueProblem(f"{quoted(value)} is not a whole number: write a number from {low} to {high}, "
                               f"e.g. {example if example is not None else low}.")
        # int() refuses more than 4,300 digits (ValueError); no range here needs 30.
        if len(value.strip().lstrip("+-").lstrip("0")) > 30:
            raise ValueProblem(f"{quoted(value.strip())} is out of range: write a number from {low} to {high}.")
        number = int(value)
        if not low <= number <= high:
            raise ValueProblem(f"{number} is out of range: write a number from {low} to {high}.")
        return number

    convert.__doc__ = f"a whole number, {low} to {high}"
    return convert


def flag(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueProblem(f"{quoted(value)} is not 0 or 1: write 1 for yes, 0 for no.")
    return value == "1"


flag.__doc__ = "0 or 1"


def choice(values: dict[str, Any]) -> Callable[[str], Any]:
    """A value out of a list: the merge file's words (read regardless of case) -> the field's values."""

    def convert(value: str) -> Any:
        for word, meant in values.items():
            if word.lower() == value.lower():
                return meant
        raise ValueProblem(f"{quoted(value)} is not one of the values this key takes: write one of "
                           f"{', '.join(values)}.")

    convert.__doc__ = "one of " + ", ".join(values)
    return convert


def word_of(values: dict[str, Any], meant: Any) -> str:
    """The merge file's word for a field's value (the first listed)."""
    for word, value in values.items():
        if value == meant:
            return word
    return str(meant)


@dataclass(frozen=True)
class Key:
    """One key of a kind: ``field`` is the form field it fills ("" when the adapter handles it).
    A name ending in "." is a prefix: ``Env.`` stands for ``Env.NAME``, one key per entry of a
    mapping field."""

    name: str
    field: str = ""
    convert: Callable[[str], Any] = text
    help: str = ""
    required: bool = False  # on Create (Name is always required)
    secret: bool = False  # names a file holding a secret: never shown, always checked by the form

    @property
    def is_prefix(self) -> bool:
        return self.name.endswith(".")

    @property
    def description(self) -> str:
        """What the key takes, for the merge page's table of keys."""
        return self.help or (self.convert.__doc__ or "").strip()


class Adapter:
    """What a kind does with Django; the app subclasses it. Methods that change data are
    called inside the merge's transaction."""

    def find(self, name: str) -> Any | None:
        raise NotImplementedError

    def find_many(self, names: list[str]) -> dict[str, Any]:
        """The definitions of these names, by name in lower case (one query where the kind can)."""
        found = {}
        for name in names:
            obj = self.find(name)
            if obj is not None:
                found[name.lower()] = obj
        return found

    def all(self) -> Iterable[Any]:
        raise NotImplementedError

    def name_of(self, obj: Any) -> str:
        return str(obj)

    def session(self) -> Any:
        """What the kind keeps for one merge (e.g. what its checks read once, the rows its saves
        write together), made inside the merge's transaction; None when it keeps nothing."""
        return None

    def finish(self, session: Any) -> None:
        """Write what the saves of this merge left to its end (inside its transaction)."""

    def form(self, obj: Any | None, values: dict[str, Any], quick: bool = False, session: Any = None) -> Any:
        """A bound form: ``obj``'s fields (or the defaults) with the keys given. ``values`` are the
        converted values by key. ``quick``: leave out the slow checks that :meth:`precheck` made."""
        raise NotImplementedError

    def precheck(self, obj: Any | None, values: dict[str, Any], memo: dict[Any, Any] | None = None
                 ) -> dict[str, list[str]]:
        """The slow checks of a line (e.g. importing an application in its own interpreter), by key.
        They run before the merge's transaction, so that it holds the database's lock briefly.
        ``memo``: one dict per kind for the whole merge, where a check asked again with the same
        inputs by another line may find its answer."""
        return {}

    def field_problems(self, form: Any) -> dict[str, list[str]]:
        """The form's errors by key ("" for those of no key)."""
        raise NotImplementedError

    def shown(self, obj: Any) -> dict[str, str]:
        """The definition's keys as a merge file writes them (for the preview's before → after)."""
        raise NotImplementedError

    def secret_changes(self, form: Any) -> list[str]:
        """Keys whose secret the form would change (shown as "changed", never the value)."""
        return []

    def runtime_keys(self) -> set[str]:
        return set()

    def is_active(self, obj: Any) -> bool:
        return False

    def delete_blocker(self, obj: Any) -> str:
        return ""

    def save(self, form: Any, user: Any, actor: str, session: Any = None) -> Any:
        raise NotImplementedError

    def delete(self, obj: Any, user: Any, actor: str, session: Any = None) -> None:
        raise NotImplementedError

    def stop(self, obj: Any, user: Any) -> None:
        """Stop a running definition and wait until it is stopped (for a merge with restart)."""
        raise NotImplementedError

    def start(self, obj: Any, user: Any) -> None:
        raise NotImplementedError

    def export(self, obj: Any) -> tuple[list[tuple[str, str]], list[str]]:
        """The definition's Create line (keys and values) and comment lines to write above it."""
        raise NotImplementedError


@dataclass
class Kind:
    noun: str  # Gateway -> CreateGateway, ModifyGateway, DeleteGateway
    label: str  # "gateway", in messages
    plural: str  # "gateways": the export option and the page's heading
    keys: tuple[Key, ...]
    adapter: Adapter = field(default_factory=Adapter)
    heading: str = ""  # what prose calls several ("web applications"), when not ``plural``

    @property
    def verbs(self) -> dict[str, str]:
        return {f"Create{self.noun}": "create", f"Modify{self.noun}": "modify", f"Delete{self.noun}": "delete"}

    def key(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name or (key.is_prefix and name.startswith(key.name)):
                return key
        raise KeyError(name)

    def specs(self) -> dict[str, VerbSpec]:
        names = tuple(k.name for k in self.keys if not k.is_prefix)
        prefixes = tuple(k.name for k in self.keys if k.is_prefix)
        required = frozenset({NAME} | {k.name for k in self.keys if k.required})
        return {
            f"Create{self.noun}": VerbSpec(names, required, prefixes),
            f"Modify{self.noun}": VerbSpec(names, frozenset({NAME}), prefixes),
            f"Delete{self.noun}": VerbSpec((NAME,), frozenset({NAME})),
        }


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    """Called from an app's ready(); registering the same noun again replaces it."""
    if NAME not in {k.name for k in kind.keys}:
        raise ValueError(f"the kind {kind.noun} has no {NAME} key")
    _KINDS[kind.noun] = kind


def kinds() -> list[Kind]:
    return list(_KINDS.values())


def kind_named(plural: str) -> Kind | None:
    return next((k for k in _KINDS.values() if k.plural == plural), None)


def schema(selected: Iterable[Kind] | None = None) -> Schema:
    verbs: dict[str, VerbSpec] = {}
    for kind in selected if selected is not None else _KINDS.values():
        verbs.update(kind.specs())
    return verbs


def verb_of(verb: str) -> tuple[Kind, str]:
    for kind in _KINDS.values():
        if verb in kind.verbs:
            return kind, kind.verbs[verb]
    raise KeyError(verb)
