"""No input gets a 500: random data to every URL of the portal, by every role.

The URL patterns are read from the project's resolver, so a new page is fuzzed
as soon as it is routed. Each example sends a GET or a POST (plain or htmx)
with random field values: huge and odd numbers, NaN, unicode, NUL characters,
very long strings, lists, and missing fields. A view that raises makes the
test client raise; a view that answers 5xx fails the assertion.

More examples: PORTAL_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest portal/tests/test_no_server_error.py
(fewer, and PORTAL_FUZZ_ODD_WAYS=one: CI's PostgreSQL pass, .ci/run).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateways.models import Gateway
from portal import paths
from portal.models import ApiToken, AuditEntry
from processes.models import Activity, Run
from webapps.models import WebApp

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "15"))
# The odd values go into each field every way (GET and POST, plain and htmx), or with "one" each
# value one way, the ways taken in turn (and each odd merge file through the page or the API): CI's
# PostgreSQL pass, where what may differ is what the database does with a value, not which branch
# of a view it reaches (the SQLite pass takes them all).
ODD_WAYS = os.environ.get("PORTAL_FUZZ_ODD_WAYS", "all")
ROLES = ["anonymous", "viewer", "operator", "administrator", "superuser"]


@dataclass(frozen=True)
class Route:
    name: str | None  # "namespace:name", or None for an unnamed pattern
    prefix: str  # the literal start of the path, for unnamed patterns
    params: tuple[str, ...]

    def __str__(self) -> str:
        return self.name or f"{self.prefix}…"


def _routes(patterns: list, namespace: str = "", prefix: str = "") -> list[Route]:
    found = []
    for p in patterns:
        literal = re.sub(r"[\^$]", "", str(p.pattern)).split("(")[0].split("<")[0]
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            found += _routes(p.url_patterns, ns, prefix + literal)
        elif isinstance(p, URLPattern):
            params = tuple(p.pattern.regex.groupindex)
            found.append(Route(f"{namespace}{p.name}" if p.name else None, "/" + prefix + literal, params))
    return found


ROUTES = sorted(set(_routes(get_resolver().url_patterns)), key=str)

GATEWAY_FORM = ["pk", "type", "name", "server", "port", "use_passphrase", "passphrase", "log_file",
                "python_executable", "python_options", "connection_timeout", "init_timeout", "restart_policy",
                "stop_timeout"]
WEBAPP_FORM = ["pk", "name", "directory", "module", "callable", "protocol", "debug", "python_executable",
               "requirements_file", "engine", "workers", "threads", "environment", "secret_environment",
               "static_files", "log_file", "restart_policy", "init_timeout", "stop_timeout"]
ACTIVITY_FILTER = ["gateway", "trigger", "level", "since", "until", "before", "after", "format"]
# The fields each view reads, so that an example often hits them; other routes draw from FIELDS.
ROUTE_FIELDS = {
    "gateways:validate": [*GATEWAY_FORM, "field"],
    "gateways:create": GATEWAY_FORM,
    "gateways:edit": GATEWAY_FORM,
    "gateways:list": ["q", "state", "page", "part"],
    "gateways:row": ["announce"],
    "gateways:control": ["from"],
    "gateways:activity": ACTIVITY_FILTER,
    "activity": ACTIVITY_FILTER,
    "profile": ["name", "revoke"],
    "login": ["username", "password", "next"],
    "api:action": ["wait"],
    "webapps:validate": [*WEBAPP_FORM, "field"],
    "webapps:create": WEBAPP_FORM,
    "webapps:edit": WEBAPP_FORM,
    "webapps:list": ["q", "state", "page", "part"],
    "webapps:row": ["announce"],
    "webapps:control": ["from"],
    "webapps:activity": ACTIVITY_FILTER,
    "webapps_api:resource": ["wait"],
    "cpf:merge": ["text", "action", "restart"],
}
# The routes whose view reads its fields from request.POST alone (the form's GET is unbound, the
# validation is POST only).
FIELDS_READ_FROM_POST_ONLY = {"gateways:create", "gateways:edit", "gateways:validate",
                              "webapps:create", "webapps:edit", "webapps:validate"}
# Every field name a form or view of the portal reads, and the admin's query keys.
FIELDS = [
    "pk", "type", "name", "server", "port", "use_passphrase", "passphrase", "log_file", "python_executable",
    "python_options", "connection_timeout", "init_timeout", "restart_policy", "stop_timeout",
    "gateway", "trigger", "level", "since", "until", "before", "after", "format", "part", "q", "state",
    "page", "announce", "from", "field", "wait", "revoke", "username", "password", "next", "action",
    "select_across", "index", "_selected_action", "o", "p", "e", "_changelist_filters", "_popup",
    "_to_field", "all", "at__gte", "at__lt", "started_at__gte", "password1", "password2", "_save",
    "directory", "module", "callable", "protocol", "debug", "requirements_file", "engine", "workers", "threads",
    "environment", "secret_environment", "static_files", "text", "restart",
]

# Values that once gave a 500: digits str.isdigit() takes but int() does not ("²"), more digits
# than int() converts (4,300), and paths the file system refuses to look up (ENAMETOOLONG: a name
# over 255 bytes, a path over 4,095; ELOOP through a link to itself).
ODD_DIGITS = ["²", "٣", "1" * 5000, "-" + "1" * 5000]
ODD_PATHS = [
    str(paths.LOG_DIR.resolve() / ("x" * 300 + ".log")),
    "/" + "d" * 300 + "/gw.log",
    "/tmp/" + "y/" * 2100 + "gw.log",
    "/" + "é" * 200 + "/app",  # 400 bytes in 200 characters
    str(paths.LOG_DIR.resolve() / "fuzz-loop" / "gw.log"),
]
ODD_NUMBERS = st.sampled_from(
    ["1e309", "-1e309", "NaN", "nan", "inf", "-inf", "0x1F", "-5", "0", "70000", "65535", "1_000",
     "9" * 30, "-" + "9" * 30, "1.5", " 7 ", "+3", "٣", "0" * 500, "", " ", "\x00", "1\x00", *ODD_DIGITS]
)
TEXT = st.one_of(
    ODD_NUMBERS,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20).map(lambda s: s * 400),
    st.sampled_from(ODD_PATHS),
    st.sampled_from(["PyGate", "Other", "127.0.0.1", "0.0.0.0", "on", "true", "csv", "rows", "start", "stop",
                     "info", "2024-05-31T14:30", "9999-12-31T23:59", "0001-01-01", "1_1", "-1_-1",
                     "99999999999999999999_1", "/etc/passwd", "../../x", "<script>", "' OR 1=1 --"]),
)
VALUES = st.one_of(TEXT, st.lists(TEXT, min_size=0, max_size=3))


def _data(route: Route) -> st.SearchStrategy[dict]:
    """Form data: mostly the route's own fields (some missing), sometimes any other name."""
    fields = ROUTE_FIELDS.get(route.name or "", FIELDS)
    keys = st.one_of(st.sampled_from(fields), st.sampled_from(FIELDS), st.text(max_size=10))
    return st.dictionaries(keys, VALUES, max_size=len(fields) + 2)


def _valid(param: str) -> st.SearchStrategy[str]:
    """A value that resolves to something that exists, so the views behind it run too."""
    if param == "name":
        return st.sampled_from(["PyGate", "pygate"])
    if param == "path":  # the web applications' API: an application's path, and an action after it
        return st.sampled_from(["PyGate", "pygate/", "PyGate/start", "PyGate/stop/", "nope/restart"])
    if param == "action":
        return st.sampled_from(["start", "stop", "restart"])
    if param == "app_label":
        return st.sampled_from(["gateways", "portal", "auth"])
    if param in {"object_id", "id", "content_type_id"}:
        return st.sampled_from(["1", "2"])
    return st.just("")


def _path(route: Route, values: dict[str, str]) -> str:
    if route.name:
        try:
            return reverse(route.name, kwargs=values)
        except NoReverseMatch:
            return ""
    return route.prefix + "".join(values.values())


@pytest.fixture
def world(django_user_model, make_user):  # type: ignore[no-untyped-def]
    """A gateway with a run and activity, a token and a history: something for every page to show."""
    from portal import audit

    gateway = Gateway.objects.create(name="PyGate", server="127.0.0.1", port=55001)
    Gateway.objects.create(name="Other", server="127.0.0.1", port=55002, state="running", pid=1)
    run = Run.objects.create(kind="gateway", object_id=gateway.pk, name="PyGate", trigger="ada", host="h", started_at=gateway.created_at)
    Activity.objects.create(kind="gateway", object_id=gateway.pk, name="PyGate", at=gateway.created_at, trigger="ada", run=run)
    users = {role: make_user(f"u-{role}", {"viewer": "Viewer", "operator": "Operator"}.get(role, "Administrator"))
             for role in ROLES[1:-1]}
    users["superuser"] = django_user_model.objects.create_superuser("u-root", password="x")
    ApiToken.objects.create(user=users["viewer"], name="t", prefix="abcd", digest="0" * 64)
    audit.record(user=users["administrator"], action="created", obj=gateway, before=None,
                 after=audit.snapshot(gateway, Gateway.AUDITED_FIELDS))
    webapp = WebApp.objects.create(name="/PyGate", directory="/tmp", module="app", python_executable="/usr/bin/python3",
                                   secret_environment={"TOKEN": "x"}, static_files={"/static": "/tmp"})
    WebApp.objects.create(name="/Other/api", directory="/tmp", module="app", protocol="asgi", state="running", pid=1)
    audit.record(user=users["administrator"], action="created", obj=webapp, before=None,
                 after=audit.snapshot(webapp, WebApp.AUDITED_FIELDS), secret_fields=WebApp.SECRET_FIELDS)
    assert AuditEntry.objects.exists()
    paths.mkdir_private(paths.LOG_DIR)
    loop = paths.LOG_DIR / "fuzz-loop"
    if not os.path.lexists(loop):
        loop.symlink_to(loop)  # ELOOP for whatever is looked up through it
    return users


def _client(clients: dict, users: dict, role: str) -> Client:
    """One client per role, logged in again when an example logged it out (or deleted its user)."""
    client = clients.setdefault(role, Client(raise_request_exception=True))
    logged_in = "_auth_user_id" in client.session
    if role == "anonymous":
        if logged_in:
            client.logout()
        return client
    user = users[role]
    if not get_user_model().objects.filter(pk=user.pk).exists():
        # An administrator may delete users in the admin, this one too: it comes back.
        groups = {"viewer": "Viewer", "operator": "Operator", "administrator": "Administrator"}
        user.save(force_insert=True)
        if role in groups:
            user.groups.add(Group.objects.get(name=groups[role]))
        logged_in = False
    if not logged_in or client.session["_auth_user_id"] != str(user.pk):
        client.force_login(user)
    return client


@pytest.mark.parametrize("route", ROUTES, ids=str)
# No broker, whatever else runs in the session: a Start is refused at once instead of queued.
@override_settings(REDIS_URL="redis+socket:///nonexistent/redis.sock")
def test_no_input_gets_a_server_error(route: Route, world) -> None:  # type: ignore[no-untyped-def]
    clients: dict[str, Client] = {}
    param_values = st.fixed_dictionaries(
        {p: st.one_of(_valid(p), st.text(min_size=1, max_size=30)) for p in route.params}
    )

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(role=st.sampled_from(ROLES), method=st.sampled_from(["get", "post"]), values=param_values,
           data=_data(route), htmx=st.booleans(), trigger_name=st.sampled_from(FIELDS))
    def fuzz(role: str, method: str, values: dict, data: dict, htmx: bool, trigger_name: str) -> None:
        path = _path(route, values)
        if not path:
            return
        # A deleted or renamed PyGate comes back, so every example has something to find.
        if not Gateway.objects.filter(name="PyGate").exists():
            Gateway.objects.create(name="PyGate", server="127.0.0.1", port=55001)
        if not WebApp.objects.filter(name="/PyGate").exists():
            WebApp.objects.create(name="/PyGate", directory="/tmp", module="app", python_executable="/usr/bin/python3")
        headers = {"HX-Request": "true", "HX-Trigger-Name": trigger_name} if htmx else {}
        response = getattr(_client(clients, world, role), method)(path, data, headers=headers)
        if route.name and route.name.startswith(("api:", "webapps_api:")) and response.status_code == 503:
            # The API's one 5xx: the broker does not answer (none runs here), said in JSON.
            assert "broker does not answer" in response.json()["error"]
            return
        assert response.status_code < 500, (method, path, data, response.content[:2000])

    fuzz()


def test_every_page_of_the_portal_is_fuzzed() -> None:
    names = {r.name for r in ROUTES}
    assert {"gateways:validate", "gateways:create", "gateways:edit", "activity", "profile", "login",
            "api:action", "admin:index", "admin:gateways_gateway_change", "webapps:validate", "webapps:create",
            "webapps:edit", "webapps:control", "webapps_api:resource"} <= names


def test_the_validation_of_odd_primary_keys_answers(admin_client_) -> None:
    """The numbers that once made /gateways/validate/ answer 500."""
    Gateway.objects.create(name="PyGate", port=55001)
    for pk in ["1e309", "NaN", "0x1F", "-1", "9" * 30, "1\x00"]:
        response = admin_client_.post("/gateways/validate/", {"pk": pk, "port": "1"},
                                      headers={"HX-Request": "true", "HX-Trigger-Name": "port"})
        # A NUL character is refused before any view (PostgreSQL cannot store one): 400, said so.
        assert response.status_code == (400 if "\x00" in pk else 200), pk


@pytest.mark.parametrize("path", ["/gateways/%00/activity/", "/gateways/?q=%00", "/activity/?gateway=a%00b",
                                  "/api/gateways/%00/"])
def test_a_nul_character_anywhere_gets_a_clear_400(admin_client_, path):
    response = admin_client_.get(path)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_a_nul_character_in_a_cookie_or_a_form_gets_a_clear_400(admin_client_):
    admin_client_.cookies["portal_csrftoken"] = "abc\x00def"
    assert admin_client_.get("/gateways/").status_code == 400
    del admin_client_.cookies["portal_csrftoken"]
    response = admin_client_.post("/gateways/validate/", {"pk": "1\x00", "name": "x"})
    assert response.status_code == 400 and "NUL character" in response.content.decode()


def _odd_merge_files() -> list[str]:
    """Merge files with an odd value in every key of every kind."""
    from portal.cpf import registry

    files = []
    for kind in registry.kinds():
        for key in kind.keys:
            for value in [*ODD_PATHS[:3], *ODD_DIGITS[:3]]:
                name = key.name + ("ODD" if key.name.endswith(".") else "")  # Env. stands for Env.NAME
                line = f"Create{kind.noun}:Name={'/odd' if kind.noun == 'Application' else 'Odd'},{name}={value}"
                files.append(f"[Actions]\n{line}\n")
    files.append("[Actions]\nCreateGateway:Name=Odd,Port=25009,PassphraseFile=" + ODD_PATHS[0] + "\n")
    files.append("[Actions]\nCreateApplication:Name=/odd,WSGIAppLocation=/tmp,WSGIAppName=app,"
                 f"SecretEnvFile.TOKEN={ODD_PATHS[1]}\n")
    return files


@pytest.mark.parametrize("route", ROUTES, ids=str)
@override_settings(REDIS_URL="redis+socket:///nonexistent/redis.sock")
def test_over_long_paths_and_odd_digits_in_every_field_get_no_server_error(route: Route, world) -> None:  # type: ignore[no-untyped-def]
    """Not left to chance: each of these values in each field the route reads (alone, and in all
    of them at once), as GET and POST, plain and htmx, by the superuser, who passes every role check."""
    client = Client(raise_request_exception=True)
    client.force_login(world["superuser"])
    path = _path(route, {p: "PyGate" if p in {"name", "path"} else ("1" if p.endswith("id") else "")
                         for p in route.params})
    if not path:
        return
    # A route's own fields one at a time (a form stops at the first bad field of a clean()); every
    # other route gets all the names at once.
    own = ROUTE_FIELDS.get(route.name or "")
    for v, value in enumerate([*ODD_PATHS, *ODD_DIGITS]):
        singles = [{field: value} for field in own] if own else []
        for d, data in enumerate([*singles, dict.fromkeys(own or FIELDS, value)]):
            # The forms read their fields from a POST only: a GET with each field alone would render
            # the same empty form again, so their GET has all of them at once (the middleware reads them).
            ways = [(method, htmx) for method in ("get", "post") for htmx in (False, True)
                    if method == "post" or data not in singles or route.name not in FIELDS_READ_FROM_POST_ONLY]
            if ODD_WAYS == "one":  # the next value in the same field goes the next way
                ways = [ways[(v + d) % len(ways)]]
            for method, htmx in ways:
                headers = {"HX-Request": "true", "HX-Trigger-Name": next(iter(data))} if htmx else {}
                response = getattr(client, method)(path, data, headers=headers)
                if response.status_code == 503 and route.name and "api" in route.name:
                    assert "broker does not answer" in response.json()["error"]
                    continue
                assert response.status_code < 500, (method, path, data, response.content[:2000])


def test_odd_values_in_every_key_of_a_merge_file_get_no_server_error(world) -> None:  # type: ignore[no-untyped-def]
    page = Client(raise_request_exception=True)
    page.force_login(world["superuser"])
    from portal import tokens

    api = Client(raise_request_exception=True,
                 headers={"Authorization": f"Bearer {tokens.create(world['superuser'], 'merge')[1]}"})
    for i, text in enumerate(_odd_merge_files()):
        # PORTAL_FUZZ_ODD_WAYS=one: each file through the page or the API, in turn.
        if ODD_WAYS != "one" or i % 2 == 0:
            response = page.post("/cpf/merge/", {"text": text, "action": "preview"})
            assert response.status_code < 500, (text[:300], response.content[:2000])
        if ODD_WAYS != "one" or i % 2 == 1:
            response = api.post("/api/cpf/merge", text, content_type="text/plain")
            assert response.status_code < 500, (text[:300], response.content[:2000])
            assert response.status_code == 400 or response.json()["dry_run"], response.content[:500]
