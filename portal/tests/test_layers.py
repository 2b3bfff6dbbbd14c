"""The layers, read from the source: what may import what, and where states are spelled.

- The project package (``portal/``) imports no app (``gateways``, ``webapps``, ``programs``): the apps
  import the portal (API authentication, roles, the dashboard's summaries), and the
  apps start what is theirs from the app registry (the processes app's watcher).
- A kind never imports another kind, templates included (``{% include %}``, ``{% extends %}``,
  ``{% load %}``): what both use lives in the shared layer (processes/, templates/processes/,
  the process_tags library).
- The core (portal/process/ and processes/) names no kind: what is a kind's own (its folders,
  its probe, its rules) comes from what the kind declares (its adapter, its spec).
- The names and the sets of process states are spelled once, in portal/process/states.py:
  a set of state names written out anywhere else is a second source that will drift. In
  templates, a state or an action (start, stop, restart) is never spelled: they compare
  and link with ``STATE.RUNNING`` and ``ACTION.STOP`` (processes/context_processors.py).
- No two modules import each other, directly or round a longer loop, not even from inside a
  function: such a cycle works only by the order of imports, and hides which layer serves which.

Python is read with ``ast``, templates with Django's own lexer, over the files as they are,
so a new module or template is covered without being listed here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from portal.process import states

ROOT = Path(__file__).resolve().parents[2]
APPS = {"gateways", "webapps", "programs"}
STATE_NAMES = set(states.ALL)
STATES_MODULE = ROOT / "portal" / "process" / "states.py"
TEMPLATES = ROOT / "templates"
ACTION_NAMES = {"start", "stop", "restart"}


def _is_test_or_migration(path: Path, root: Path = ROOT) -> bool:
    parts = path.relative_to(root).parts
    return (
        "tests" in parts
        or "migrations" in parts
        or path.name.startswith("test_")
        or path.name == "conftest.py"
    )


def _sources(*folders: str) -> list[Path]:
    return sorted(
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        if not _is_test_or_migration(path)
    )


# --- portal/ imports no app ------------------------------------------------------------------


def app_imports(source: str) -> list[str]:
    """The modules of an app that ``source`` imports (absolute imports only: a relative one
    stays inside its own package)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in APPS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in APPS:
                found.append(node.module)
    return found


def test_the_check_finds_every_form_of_import_of_an_app():
    source = (
        "import gateways\nimport webapps.front as f\nfrom gateways.watcher import start_watcher\n"
        "def f():\n    from webapps import front\n"
        # Not imports of an app: a string, a look-alike name, a relative import.
        "x = 'gateways.urls'\nimport gateways_extra\nfrom . import views\n"
    )
    assert app_imports(source) == ["gateways", "webapps.front", "gateways.watcher", "webapps"]


def test_the_project_package_imports_no_app():
    sources = _sources("portal")
    assert ROOT / "portal" / "celery.py" in sources and ROOT / "portal" / "views.py" in sources
    found = {
        str(path.relative_to(ROOT)): imports
        for path in sources
        if (imports := app_imports(path.read_text()))
    }
    assert found == {}, (
        "portal/ must not import an app: move what the app needs into portal/ and import it from "
        f"the app, or let the app register itself from its AppConfig.ready(): {found}"
    )


def test_the_process_layer_imports_no_kind():
    """processes/ serves every kind through adapters: it imports neither gateways nor webapps."""
    sources = _sources("processes")
    assert ROOT / "processes" / "tasks.py" in sources and ROOT / "processes" / "watcher.py" in sources
    found = {
        str(path.relative_to(ROOT)): imports
        for path in sources
        if (imports := app_imports(path.read_text()))
    }
    assert found == {}, (
        "processes/ must not import a kind's app: ask the kind's adapter (processes/adapters.py) "
        f"for what differs between kinds: {found}"
    )


def test_a_worker_starts_the_watcher_from_the_app_registry_and_celery_alone_imports_no_app():
    # After Django is set up (as a worker does before it is ready), the processes app has
    # connected the watcher (of every kind's keepers) to the worker's signals.
    from celery.signals import worker_ready, worker_shutdown

    assert "processes.watcher.start" in [key[0] for key, _ in worker_ready.receivers]
    assert "processes.watcher.stop" in [key[0] for key, _ in worker_shutdown.receivers]
    # portal.celery on its own (before Django is set up) loads no app.
    code = (
        "import sys, portal.celery\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('gateways', 'webapps', 'programs'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_dashboard_shows_the_summaries_the_apps_register():
    from portal import summaries
    from processes.adapters import all_adapters

    # Registered by each kind's AppConfig.ready(): one tile for every kind; the dashboard tests show it drawn.
    assert {key: s.template for key, s in summaries._summaries.items()} == {
        kind.kind: "processes/definitions/_dashboard_tile.html" for kind in all_adapters()}


# --- a kind imports no other kind -------------------------------------------------------------


def _kind_of(path: Path) -> str | None:
    """The kind whose code or templates ``path`` is (None: the shared layer or the project)."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "templates":
        parts = parts[1:]
    return parts[0] if len(parts) > 1 and parts[0] in APPS else None


def test_no_kind_imports_another_kind():
    for kind in APPS:
        assert (ROOT / kind / "adapter.py") in _sources(kind)
    found = {
        str(path.relative_to(ROOT)): others
        for kind in sorted(APPS)
        for path in _sources(kind)
        if (others := [m for m in app_imports(path.read_text()) if m.split(".")[0] != kind])
    }
    assert found == {}, (
        "A kind imports no other kind: move what both use into processes/ (Django code) or "
        f"portal/process/ (Django-free) and import it from there: {found}"
    )


def tag_libraries() -> dict[str, str]:
    """Each template tag library of the project, and the app (its top folder) that holds it."""
    return {
        path.stem: path.relative_to(ROOT).parts[0]
        for path in ROOT.glob("*/templatetags/*.py")
        if path.name != "__init__.py"
    }


def template_references(text: str, libraries: dict[str, str]) -> list[str]:
    """The folders (``gateways``) or apps whose templates or tag libraries ``text`` uses, as
    ``{% include %}``, ``{% extends %}`` (literal names only) and ``{% load %}`` say."""
    from django.template.base import Lexer, TokenType

    found = []
    for token in Lexer(text).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        bits = token.split_contents()
        if bits[0] in ("include", "extends") and len(bits) > 1 and bits[1][:1] in "\"'":
            name = bits[1][1:-1]
            if "/" in name:
                found.append(name.split("/")[0])
        elif bits[0] == "load":
            names = bits[1:bits.index("from")] if "from" in bits else bits[1:]
            libs = bits[bits.index("from") + 1:] if "from" in bits else names
            found += [libraries[lib] for lib in libs if lib in libraries]
    return found


def test_the_check_finds_every_template_reference_to_a_kind():
    libraries = {"gateway_tags": "gateways", "process_tags": "processes", "static": "django"}
    text = (
        '{% extends "gateways/base.html" %}{% load gateway_tags process_tags %}'
        "{% include 'webapps/_field.html' with field=form.name %}{% load state_badge from gateway_tags %}"
        # Not references to a kind: a template named by a variable, a shared one, plain text.
        '{% include tile.template %}{% include "processes/_field.html" %}<p>see "gateways/_field.html"</p>'
        '{% extends "base.html" %}'
    )
    assert template_references(text, libraries) == ["gateways", "gateways", "processes", "webapps", "gateways",
                                                    "processes"]


def test_no_template_uses_another_kinds_templates_or_tags_and_shared_ones_use_none():
    libraries = tag_libraries()
    assert libraries.get("process_tags") == "processes"
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert TEMPLATES / "webapps" / "_definition.html" in templates
    found = {}
    for path in templates:
        kind = _kind_of(path)
        others = [ref for ref in template_references(path.read_text(), libraries) if ref in APPS and ref != kind]
        if others:
            found[str(path.relative_to(ROOT))] = others
    assert found == {}, (
        "A template uses only its own kind's templates and tags, or the shared ones: move what kinds share to "
        f"templates/processes/ and its tags to processes/templatetags/process_tags.py: {found}"
    )


# --- the core names no kind -------------------------------------------------------------------

KIND_WORD = re.compile(r"\b(?:" + "|".join(sorted(APPS)) + r")\b")


def kind_names(source: str) -> list[int]:
    """Lines where ``source`` names a kind's package or folder in a string (not in a docstring:
    prose may give a kind as an example): "gateways.probe:ping", "log/gateways"."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
        and KIND_WORD.search(node.value)
    )


def test_the_check_finds_a_kind_named_in_a_string_and_not_in_prose():
    source = (
        '"""Shared by gateways and webapps."""\n'
        'PROBE = "gateways.probe:ping"\n'  # 2
        'folder = os.path.join(var, "log", "gateways")\n'  # 3
        'x = f"{var}/webapps/{name}"\n'  # 4
        "def f():\n"
        '    """Like webapps do."""\n'
        # Not a kind's package or folder: the word of one, a longer name, a comment.
        '    return "gateway" + "webapps_extra"  # gateways\n'
    )
    assert kind_names(source) == [2, 3, 4]


def test_the_core_names_no_kind():
    sources = _sources("portal/process", "processes")
    assert ROOT / "portal" / "process" / "probes.py" in sources and ROOT / "processes" / "adapters.py" in sources
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if (lines := kind_names(path.read_text()) + [f"import {m}" for m in app_imports(path.read_text())])
    }
    assert found == {}, (
        "portal/process/ and processes/ name no kind: let the kind declare what is its own (its adapter's "
        f"hooks, the spec it builds, an argument it passes). Found at lines: {found}"
    )


# --- no import cycles ------------------------------------------------------------------------

PACKAGES = ("portal", "processes", "gateways", "webapps", "programs")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(source: str, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports when it runs: at its top and inside its
    functions and classes alike, relative or absolute; ``from a import b`` imports the module
    ``a.b`` when there is one, else ``a``. What ``if TYPE_CHECKING:`` imports never runs: left out."""
    found: set[str] = set()
    package = name.split(".") if is_package else name.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.update(f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                         for alias in node.names)
        visit(node)

    visit(ast.parse(source))
    return {module for module in found if module in known and module != name}


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Each module of ``packages`` (tests and migrations aside) and the project's modules it imports."""
    paths = {_module_name(path, root): path for folder in packages for path in (root / folder).rglob("*.py")
             if not _is_test_or_migration(path, root)}
    return {name: imported_modules(path.read_text(), name, path.name == "__init__.py", set(paths))
            for name, path in paths.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle of ``graph`` as a loop of modules, the first one again at its end ("a -> b -> a"):
    one per strongly connected group of two or more (Tarjan's algorithm, written with an explicit
    stack: a chain of imports may be deeper than Python's recursion allows)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return [_loop_in(group, graph) for group in groups]


def _loop_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """One loop through the group's first module, found breadth first (the shortest)."""
    first = min(group)
    paths = {first: [first]}
    queue = [first]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & group):
            if child == first:
                return [*paths[node], first]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no loop through {first} in {sorted(group)}")


def test_the_check_finds_a_cycle_through_imports_in_functions_and_names_it(tmp_path: Path):
    files = {
        "pkg/__init__.py": "",
        "pkg/tasks.py": "from pkg import models\ndef reconcile():\n    from pkg.watcher import scan\n",
        "pkg/watcher.py": "def restart():\n    from . import tasks\n",
        "pkg/models.py": "import json\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.views import x\n",
        "pkg/views.py": "from pkg.models import Row\nfrom pkg import helpers\n",
        "pkg/helpers.py": "def page():\n    import pkg.views\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.tasks"] == {"pkg.models", "pkg.watcher"}
    assert graph["pkg.models"] == set(), "what only a type checker reads is no import at run time"
    assert sorted(import_cycles(graph)) == [["pkg.helpers", "pkg.views", "pkg.helpers"],
                                           ["pkg.tasks", "pkg.watcher", "pkg.tasks"]]


def test_no_module_of_the_project_imports_itself_round_a_cycle():
    graph = import_graph(ROOT)
    assert {"processes.tasks", "processes.pipeline", "webapps.adapter", "gateways.forms", "programs.adapter"} \
        <= set(graph)
    assert "processes.adapters" in graph["processes.pipeline"]
    cycles = [" -> ".join(loop) for loop in import_cycles(graph)]
    assert cycles == [], (
        "Modules that import each other (inside a function too): move what both need into a module "
        "below them both, or let the lower one be told (a hook, a registry) instead of importing "
        f"the upper one: {cycles}"
    )


# --- state names are spelled once -------------------------------------------------------------


def state_sets(source: str) -> list[int]:
    """Lines where ``source`` writes out a set of state names: a set literal with one, a list
    or tuple with two or more, or a dict keyed by two or more."""

    def names(nodes: list[ast.expr | None]) -> int:
        return sum(isinstance(n, ast.Constant) and n.value in STATE_NAMES for n in nodes)

    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            (isinstance(node, ast.Set) and names(node.elts) >= 1)
            or (isinstance(node, (ast.List, ast.Tuple)) and names(node.elts) >= 2)
            or (isinstance(node, ast.Dict) and names(node.keys) >= 2)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_check_finds_sets_of_state_names_and_nothing_else():
    source = (
        'ACTIVE = {"starting", "running"}\n'  # 1
        'x = state in {"backoff"}\n'  # 2
        'q = Q(state__in=["exited", "fatal"])\n'  # 3
        'if state in ("stopped", "unknown"): pass\n'  # 4
        'outcome = {"exited": 1, "stopped": 2}[to]\n'  # 5
        # Not sets of state names: one state and its label, a single comparison, other words,
        # and sets written with the names from portal/process/states.py.
        'STARTING = "starting", "Starting"\n'
        'y = state == "running"\n'
        'z = {"GET", "HEAD"}\n'
        "w = {RUNNING, STOPPED} | states.DOWN\n"
    )
    assert state_sets(source) == [1, 2, 3, 4, 5]


def state_literals_in_templates(text: str) -> list[str]:
    """The state names a template writes in quotes (``obj.state == "running"``): a template
    names a state as ``STATE.RUNNING`` (processes.context_processors), from the one list."""
    tags = " ".join(re.findall(r"{%.*?%}|{{.*?}}", text, re.S))
    return [m.group(1) for m in re.finditer(r"""["']([a-z]+)["']""", tags) if m.group(1) in STATE_NAMES]


def test_the_check_finds_a_state_name_written_in_a_template():
    text = ('{% if obj.state == "running" %}{% elif obj.state in \'stopped fatal\' %}{% endif %}'
            '{% if obj.state == STATE.RUNNING %}<p class="state" data-label="stopped">{{ label }}</p>{% endif %}')
    assert state_literals_in_templates(text) == ["running"]


def test_templates_name_states_and_actions_from_the_one_list():
    found = {str(path.relative_to(ROOT)): names for path in sorted(TEMPLATES.rglob("*.html"))
             if (names := state_literals_in_templates(path.read_text()))}
    assert found == {}, f"Write STATE.RUNNING (processes.context_processors.names), not the name itself: {found}"
    actions = {str(path.relative_to(ROOT)) for path in sorted(TEMPLATES.rglob("*.html"))
               if re.search(r"""(?:==|!=)\s*["'](?:start|stop|restart)["']""", path.read_text())}
    assert actions == set(), f"Write ACTION.START (processes.context_processors.names), not the name itself: {actions}"


ACTION_NAMES = {"start", "stop", "restart"}


# The calls that take an action, and the keywords that name one.
ACTING_CALLS = {"request", "send", "wait_settled", "awaiting", "await_request", "act", "superseded"}
ACTION_KEYWORDS = {"intent", "requested", "action"}


def action_literals(source: str) -> list[int]:
    """Lines where ``source`` writes an action's name as a value the code acts on: compared
    (``intent == "start"``), passed to a call that acts (``control.request(obj, "stop", user)``),
    as the value of a keyword that names one (``Q(intent="start")``), or as keys of a dict by
    action. Not a flag or an option that happens to be called restart (``?restart=1``), nor prose."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        values: list[ast.expr | None] = []
        if isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
        elif isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            values = [k.value for k in node.keywords if k.arg in ACTION_KEYWORDS]
            if func in ACTING_CALLS:
                values += node.args
        elif isinstance(node, ast.Dict):
            keys = [k for k in node.keys if isinstance(k, ast.Constant) and k.value in ACTION_NAMES]
            values = keys if len(keys) >= 2 else []
        if any(isinstance(v, ast.Constant) and v.value in ACTION_NAMES for v in values):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_the_check_finds_an_action_spelled_out():
    source = (
        'if obj.intent == "start": pass\n'  # 1
        'control.request(obj, "stop", user)\n'  # 2
        'TASKS = {"restart": restart, "stop": stop}\n'  # 3
        'q = Q(intent="start")\n'  # 4
        # Not actions spelled out: the names, a keyword's name, words in a sentence.
        "if obj.intent == START: pass\n"
        'journal.note("reload", how="restart")\n'
        'restart = _flag(request, "restart")\n'
        'answer = {"restart": True, "state": "running"}\n'
        'message = "start it first"\n'
    )
    assert action_literals(source) == [1, 2, 3, 4]


def test_actions_are_spelled_only_in_portal_process_states():
    sources = [p for p in _sources("portal", "processes", *sorted(APPS)) if p != STATES_MODULE]
    found = {str(path.relative_to(ROOT)): lines for path in sources if (lines := action_literals(path.read_text()))}
    assert found == {}, (
        "An action's name is spelled in portal/process/states.py only: import START, STOP, RESTART "
        f"(or ACTIONS) from there. Found at lines: {found}"
    )


def test_sets_of_state_names_are_spelled_only_in_portal_process_states():
    sources = [p for p in _sources("portal", "processes", "gateways", "webapps", "programs", "bench")
               if p != STATES_MODULE]
    assert len(sources) > 50
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if (lines := state_sets(path.read_text()))
    }
    assert found == {}, (
        "Sets of state names are spelled in portal/process/states.py only: import the set "
        f"(ACTIVE, SETTLED, DOWN, STARTABLE...) or the names (RUNNING...) from there. Found at lines: {found}"
    )


def test_the_state_field_offers_the_states_of_portal_process_states():
    from gateways.models import Gateway

    field = Gateway._meta.get_field("state")
    assert list(field.choices) == states.CHOICES
    assert [value for value, _ in field.choices] == [s.value for s in states.State]
    assert field.default == states.STOPPED


# --- templates spell no state and no action ---------------------------------------------------

_QUOTED = re.compile(r"""(["'])([a-z]+)\1""")
_ACTION_VALUE = re.compile(r"""\bvalue=(["'])(""" + "|".join(sorted(ACTION_NAMES)) + r""")\1""")


def spelled_names(text: str) -> list[tuple[int, str]]:
    """(line, name) where a template spells a state or an action: quoted in a tag or a variable
    (``{% if obj.state == "running" %}``, ``{% url 'gateways:control' gateway.name 'stop' %}``),
    or as the value of a button or an input (``value="restart"``)."""
    from django.template.base import Lexer, TokenType

    found = []
    for token in Lexer(text).tokenize():
        if token.token_type in (TokenType.BLOCK, TokenType.VAR):
            found += [(token.lineno, m.group(2)) for m in _QUOTED.finditer(token.contents)
                      if m.group(2) in STATE_NAMES | ACTION_NAMES]
        elif token.token_type == TokenType.TEXT:
            found += [(token.lineno + token.contents[:m.start()].count("\n"), m.group(2))
                      for m in _ACTION_VALUE.finditer(token.contents)]
    return found


def test_the_check_finds_states_and_actions_spelled_in_a_template():
    text = (
        '{% if webapp.state == "running" %}\n'  # 1
        "{% url 'gateways:control' gateway.name 'stop' as stop_url %}\n"  # 2
        '{{ obj.state|default:"unknown" }}\n'  # 3
        '<button name="then" value="restart">Save and restart</button>\n'  # 4
        # Not states or actions spelled: the shared names, other words, a field named restart, prose.
        "{% if webapp.state == STATE.RUNNING %}{% url 'gateways:control' gateway.name ACTION.STOP %}\n"
        '{% include "x.html" with where="list" %}{% if venv.state == "building" %}{% endif %}\n'
        '<input type="checkbox" name="restart"> <p>Stop it, then start it: "running" is shown.</p>\n'
    )
    assert spelled_names(text) == [(1, "running"), (2, "stop"), (3, "unknown"), (4, "restart")]


def test_templates_take_state_and_action_names_from_the_shared_names():
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert TEMPLATES / "processes" / "_control_buttons.html" in templates
    found = {
        str(path.relative_to(ROOT)): names
        for path in templates
        if (names := spelled_names(path.read_text()))
    }
    assert found == {}, (
        "Templates compare and link with STATE.RUNNING and ACTION.STOP (processes/context_processors.py), "
        f"never the words themselves: {found}"
    )


def test_the_shared_names_are_the_states_and_actions_of_their_one_place():
    from processes import context_processors, control

    names = context_processors.names(None)
    assert names["STATE"] == {state.name: state.value for state in states.State}
    assert names["STATE"]["RUNNING"] == states.RUNNING
    assert set(names["ACTION"].values()) == set(control.ACTIONS) == ACTION_NAMES
    assert names["ACTION"]["STOP"] == control.STOP
