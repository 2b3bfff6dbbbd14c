"""Reading and writing merge files (configuration as code), without Django.

A merge file is an InterSystems-style CPF merge file restricted to its ``[Actions]``
section::

    ; comments start with ; or # (a whole line only: a value may hold either)
    [Actions]
    CreateGateway:Name=PyGate,Server=127.0.0.1,Port=25001
    CreateApplication:Name=/flask,NameSpace=IRISAPP,WSGIAppLocation=/srv/app/,WSGIAppName=app,WSGICallable=app,Type=2,DispatchClass=%SYS.Python.WSGI,MatchRoles=:%ALL,WSGIDebug=0,WSGIType=0

Each action is ``Verb:Key=Value,Key=Value``. The rules, as this portal reads them:

- Lines end in LF or CRLF; a UTF-8 byte order mark at the start is ignored; blank lines and
  lines whose first non-blank character is ``;`` or ``#`` are comments.
- A key ends at its first ``=``, so a value may contain ``=`` as it is (``Env=A=1`` is the key
  ``Env`` with the value ``A=1``). Spaces around keys and unquoted values are dropped.
- Values are not quoted, as in IRIS, except that a value holding a comma (or beginning with a
  double quote, or with spaces to keep at either end) is written in double quotes, a double
  quote inside doubled: ``PythonOptions="-X dev,-W error"``, ``Note="a ""b"" c"``. A double
  quote anywhere but at the start of a value is an ordinary character. :func:`write` quotes
  exactly the values that need it, so what it writes reads back the same.

The parser checks the form of the file and, given a :class:`Schema`, which verbs and keys
exist and which are required; it does not know what a value means (the kinds of definitions
convert values, and their forms validate them). Every problem is a :class:`Problem` with the
line number, the key (when there is one) and a sentence that says how to fix it; all of them
are collected, not only the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# A merge file of 1,000 definitions is about 300 kB; ten times that is not a merge file. The Merge
# page, POST /api/cpf/merge and `manage.py cpf merge` refuse a larger one before reading it.
MAX_FILE_BYTES = 4 * 1024 * 1024


def too_large(what: str, size: int) -> str:
    """The refusal of a merge file of ``size`` bytes (larger than MAX_FILE_BYTES)."""
    return (f"{what} has {size:,} bytes; a merge file has at most {MAX_FILE_BYTES:,} bytes "
            f"({MAX_FILE_BYTES // 1024 // 1024} MiB): split it into several files.")

ACTIONS = "Actions"
BOM = "\ufeff"


@dataclass(frozen=True)
class VerbSpec:
    """The keys a verb accepts and those it requires. A prefix such as ``Env.`` accepts every
    key that starts with it (``Env.DEBUG``): one key per variable of a mapping."""

    keys: tuple[str, ...]
    required: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def listing(self) -> str:
        return ", ".join([*self.keys, *(f"{p}NAME" for p in self.prefixes)])


# Verb -> what it accepts. Built from the registry of kinds (portal/cpf/registry.py).
Schema = Mapping[str, VerbSpec]


@dataclass(frozen=True)
class Problem:
    line: int
    message: str
    key: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.key}" if self.key else "")
        return f"{where}: {self.message}"


@dataclass
class Action:
    """One ``Verb:Key=Value,...`` line: the values as written, in the file's order."""

    line: int
    verb: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Document:
    actions: list[Action]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


class MergeFileError(ValueError):
    """A file that cannot be read at all (not UTF-8)."""


def decode(data: bytes | str) -> str:
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MergeFileError(
                f"The file is not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x}): save it as UTF-8."
            ) from None
    nul = text.find("\x00")
    if nul >= 0:
        # No key or value may hold one (PostgreSQL refuses them in text); a file with one is not a merge file.
        line = text.count("\n", 0, nul) + 1
        raise MergeFileError(
            f"The file holds a NUL character (line {line}): it is not a text file. Send the merge file itself, "
            "saved as UTF-8 text."
        )
    return text


def _split_values(text: str, line: int) -> tuple[list[tuple[str, str]], list[Problem]]:
    """``Key=Value,Key="a,b"`` -> [(key, value)]. Written by hand: csv would also unquote a
    quote in the middle of a value, and IRIS's values (``MatchRoles=:%ALL``) are not csv."""
    pairs: list[tuple[str, str]] = []
    problems: list[Problem] = []
    if not text.strip():
        return pairs, problems
    i, n = 0, len(text)
    while True:
        eq, comma = text.find("=", i), text.find(",", i)
        if eq < 0 or 0 <= comma < eq:
            piece = (text[i:] if comma < 0 else text[i:comma]).strip()
            if piece:
                problems.append(Problem(
                    line, f"{_cut(piece)} has no “=”: write Key=Value, and put a value that holds "
                          'a comma in double quotes (Key="a,b").', piece))
            elif comma >= 0:
                problems.append(Problem(line, "an empty item between two commas: remove one comma."))
            else:
                problems.append(Problem(line, "the line ends with a comma: remove it, or add the missing Key=Value."))
            if comma < 0:
                break
            i = comma + 1
            continue
        key = text[i:eq].strip()
        j = eq + 1
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == '"':
            value, j, closed = _quoted(text, j + 1)
            if not closed:
                problems.append(Problem(line, 'the quoted value has no closing double quote: end it with ".', key))
                pairs.append((key, value))
                break
            rest = text.find(",", j)
            tail = (text[j:] if rest < 0 else text[j:rest]).strip()
            if tail:
                problems.append(Problem(
                    line, f"{_cut(tail)} follows the closing quote: put the whole value inside the quotes, "
                          'and write a quote inside them as "".', key))
        else:
            rest = text.find(",", j)
            value = (text[j:] if rest < 0 else text[j:rest]).strip()
        pairs.append((key, value))
        if rest < 0:
            break
        i = rest + 1
    return pairs, problems


def _cut(text: str, limit: int = 60) -> str:
    """Text as a message quotes it: a long one is cut, so the message stays readable."""
    return f"“{text if len(text) <= limit else text[:limit] + '…'}”"


def _quoted(text: str, i: int) -> tuple[str, int, bool]:
    out = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            if i + 1 < n and text[i + 1] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out), i + 1, True
        out.append(c)
        i += 1
    return "".join(out), i, False


def parse(data: bytes | str, schema: Schema | None = None) -> Document:
    """Read a merge file. With a schema, unknown verbs and keys and missing required keys are
    problems too. Raises :class:`MergeFileError` only for a file that is not UTF-8 text."""
    text = decode(data)
    if text.startswith(BOM):
        text = text[1:]
    actions: list[Action] = []
    problems: list[Problem] = []
    section: str | None = None
    known_verbs = ", ".join(sorted(schema)) if schema else ""
    # Split on LF only (a CR before it is dropped): splitlines() would also split on form feeds
    # and Unicode separators, and the line numbers would no longer be an editor's.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                problems.append(Problem(number, f"{_cut(line)} opens a section without closing it: write [{ACTIONS}]."))
                section = None
                continue
            section = line[1:-1].strip()
            if section.lower() != ACTIONS.lower():
                problems.append(Problem(
                    number, f"unknown section [{section}]: this portal merges only the [{ACTIONS}] section; "
                            "remove the section or move its lines under [Actions]."))
            continue
        if section is None:
            problems.append(Problem(number, f"an action before any section: put [{ACTIONS}] on a line above it."))
            continue
        if section.lower() != ACTIONS.lower():
            continue  # already reported once, at the section's line
        verb, colon, rest = line.partition(":")
        verb = verb.strip()
        if not colon or not verb or "=" in verb:
            problems.append(Problem(
                number, f"{_cut(line)} is not an action: write Verb:Key=Value,Key=Value, "
                        "e.g. CreateGateway:Name=PyGate,Port=25001."))
            continue
        spec = None
        if schema is not None:
            spec = _find_verb(schema, verb)
            if spec is None:
                problems.append(Problem(
                    number, f"unknown action {verb}: use one of {known_verbs}."))
                continue
            verb, spec = spec
        pairs, found = _split_values(rest, number)
        problems += found
        action = Action(number, verb)
        for key, value in pairs:
            if not key:
                problems.append(Problem(number, f"“={value}” has no key before “=”: write Key=Value."))
                continue
            if spec is not None:
                canonical = _find_key(spec, key)
                if canonical is None:
                    problems.append(Problem(
                        number, f"unknown key for {verb}: use one of {spec.listing()}.", key))
                    continue
                key = canonical
            if key in action.values:
                problems.append(Problem(number, f"{key} is given twice: keep one {key}=… on this line.", key))
                continue
            action.values[key] = value
        if spec is not None:
            for key in spec.keys:
                if key in spec.required and key not in action.values:
                    problems.append(Problem(number, f"{verb} needs {key}: add {key}=… to this line.", key))
        actions.append(action)
    return Document(actions, problems)


def _find_verb(schema: Schema, verb: str) -> tuple[str, VerbSpec] | None:
    # IRIS reads verbs and keys regardless of case; so does this portal, and writes them as listed.
    if verb in schema:
        return verb, schema[verb]
    for name, spec in schema.items():
        if name.lower() == verb.lower():
            return name, spec
    return None


def _find_key(spec: VerbSpec, key: str) -> str | None:
    if key in spec.keys:
        return key  # as listed: most lines (and every exported file) write them so
    for name in spec.keys:
        if name.lower() == key.lower():
            return name
    for prefix in spec.prefixes:
        if key.lower().startswith(prefix.lower()) and len(key) > len(prefix):
            return prefix + key[len(prefix):]  # the variable's name as written
    return None


def quote(value: str) -> str:
    """The value as a merge file writes it: bare, or in double quotes when it must be."""
    if "," in value or value.startswith('"') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def format_action(verb: str, values: Iterable[tuple[str, str]]) -> str:
    return verb + ":" + ",".join(f"{key}={quote(value)}" for key, value in values)


def write(actions: Iterable[tuple[str, Iterable[tuple[str, str]]] | str], header: Iterable[str] = ()) -> str:
    """A merge file: comment lines, ``[Actions]``, then one line per action. An item that is a
    plain string is written as a comment line (``; `` added)."""
    lines = [f"; {line}" if line else ";" for line in header]
    lines.append(f"[{ACTIONS}]")
    for item in actions:
        if isinstance(item, str):
            lines.append(f"; {item}")
        else:
            verb, values = item
            lines.append(format_action(verb, values))
    return "\n".join(lines) + "\n"
