"""Merging many web applications: what a merge reads once (the paths in use, the import check
of a module imported the same way) gives what the page's form gives for each line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portal.cli import CliOperator
from portal.cpf import merge
from webapps import routing
from webapps.forms import Mounts, WebAppForm
from webapps.models import WebApp
from webapps.tests.webapp_factories import WSGI_APP, make_webapp

pytestmark = pytest.mark.django_db


def apply(text: str):  # type: ignore[no-untyped-def]
    return merge.merge(text, CliOperator(), apply=True)


def test_lines_importing_the_same_module_the_same_way_share_one_import_check(tmp_path: Path):
    # Each import of the module (one per check, in its own interpreter) adds a line to a file.
    count = tmp_path / "imports.txt"
    count.touch(mode=0o666)  # the checks run as users of their own when the suite runs as root
    count.chmod(0o666)
    (tmp_path / "app.py").write_text(f"open({str(count)!r}, 'a').write('imported\\n')\n" + WSGI_APP)
    lines = [f"CreateApplication:Name=/a{i},WSGIAppLocation={tmp_path},WSGIAppName=app" for i in range(5)]
    result = apply("[Actions]\n" + "\n".join(lines) + "\n")
    assert result.problems == [] and result.counts["created"] == 5
    assert count.read_text().splitlines() == ["imported"]
    # Another callable is another check; so is another merge.
    result = apply(f"[Actions]\nCreateApplication:Name=/b,WSGIAppLocation={tmp_path},WSGIAppName=app,"
                   "WSGICallable=missing\n")
    assert [p.key for p in result.problems] == ["WSGICallable"]
    assert count.read_text().splitlines() == ["imported"] * 2


def test_a_failed_import_check_is_every_sharing_lines_problem(tmp_path: Path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('this application fails when imported')\n")
    lines = [f"CreateApplication:Name=/a{i},WSGIAppLocation={tmp_path},WSGIAppName=broken" for i in range(3)]
    result = apply("[Actions]\n" + "\n".join(lines) + "\n")
    assert WebApp.objects.count() == 0
    assert [(p.line, p.key) for p in result.problems] == [(2, "WSGIAppName"), (3, "WSGIAppName"),
                                                          (4, "WSGIAppName")]
    assert len({p.message for p in result.problems}) == 1
    assert "this application fails when imported" in result.problems[0].message


PATHS = ["/a", "/a/b/c", "/ab", "/b", "/a/b/x/y", "/shop/api"]
ASKED = ["/a/b", "/a", "/A/B", "/ab/c", "/c", "/a/b/c", "/shop", "/shop/api/v1", "/a/b/x"]


def answer(form: WebAppForm) -> tuple[dict[str, list[str]], list[str]]:
    form.is_valid()
    return {k: list(v) for k, v in form.errors.items() if k == "name"}, list(form.warnings)


def test_the_paths_read_once_give_the_forms_clash_and_nested_path_answers(tmp_path: Path):
    for path in PATHS:
        make_webapp(tmp_path, name=path)
    mounts = Mounts.read()
    for asked in ASKED:
        line = {"name": asked, "directory": str(tmp_path), "module": "hello"}
        page = answer(WebAppForm(line, check_app=False))
        assert answer(WebAppForm(line, check_app=False, mounts=mounts)) == page, asked
    # A merge tells the paths what its saves and deletes changed: the same answers as the database.
    WebApp.objects.filter(name="/ab").delete()
    mounts.deleted("/ab")
    make_webapp(tmp_path, name="/a/b")
    mounts.saved("/a/b")
    for asked in ASKED:
        line = {"name": asked, "directory": str(tmp_path), "module": "hello"}
        page = answer(WebAppForm(line, check_app=False))
        assert answer(WebAppForm(line, check_app=False, mounts=mounts)) == page, asked


def test_a_line_sees_the_paths_the_lines_above_created_or_deleted(tmp_path: Path):
    (tmp_path / "app.py").write_text(WSGI_APP)
    make_webapp(tmp_path, name="/shop", module="app")
    result = apply(f"[Actions]\nDeleteApplication:Name=/shop\n"
                   f"CreateApplication:Name=/a,WSGIAppLocation={tmp_path},WSGIAppName=app\n"
                   f"CreateApplication:Name=/a/b,WSGIAppLocation={tmp_path},WSGIAppName=app\n"
                   f"CreateApplication:Name=/A/,WSGIAppLocation={tmp_path},WSGIAppName=app\n"
                   f"CreateApplication:Name=/shop/api,WSGIAppLocation={tmp_path},WSGIAppName=app\n")
    assert [(p.line, p.key) for p in result.problems] == [(5, "Name")]
    assert "already used by the application /a" in result.problems[0].message
    result = apply(f"[Actions]\nDeleteApplication:Name=/shop\n"
                   f"CreateApplication:Name=/a,WSGIAppLocation={tmp_path},WSGIAppName=app\n"
                   f"CreateApplication:Name=/a/b,WSGIAppLocation={tmp_path},WSGIAppName=app\n"
                   f"CreateApplication:Name=/shop/api,WSGIAppLocation={tmp_path},WSGIAppName=app\n")
    assert result.applied, result.problems
    (nested,) = [c for c in result.changes if c.name == "/a/b"]
    assert nested.warnings == ["/a/b is inside /a: requests under /a/b go to this application, no longer to /a."]
    (api,) = [c for c in result.changes if c.name == "/shop/api"]
    assert api.warnings == []  # /shop was deleted by the first line


@pytest.mark.django_db(transaction=True)
def test_the_routes_file_has_every_application_of_a_merge_after_its_commit(tmp_path: Path, settings):
    routes = tmp_path / "front" / "routes.json"
    settings.WEBAPPS_ROUTES_FILE = routes
    (tmp_path / "app.py").write_text(WSGI_APP)
    lines = [f"CreateApplication:Name=/a{i},WSGIAppLocation={tmp_path},WSGIAppName=app" for i in range(4)]
    assert apply("[Actions]\n" + "\n".join(lines) + "\n").applied
    assert routing.routes_file() == routes
    assert sorted(a["path"] for a in json.loads(routes.read_text())["apps"]) == [f"/a{i}" for i in range(4)]
    assert apply("[Actions]\nDeleteApplication:Name=/a1\n").applied
    assert sorted(a["path"] for a in json.loads(routes.read_text())["apps"]) == ["/a0", "/a2", "/a3"]
