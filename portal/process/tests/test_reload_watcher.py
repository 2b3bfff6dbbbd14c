"""The debug-reload watcher: which files count, which folders never do, and the debounce."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.process.reload import Watcher, validate_reload
from portal.process.spec import Spec


def touch(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    # A later mtime than the snapshot's, even on a file system with coarse timestamps.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    return path


@pytest.fixture
def app(tmp_path: Path) -> Path:
    touch(tmp_path / "web.py")
    touch(tmp_path / "templates" / "page.html", "<p>one</p>")
    touch(tmp_path / "env" / "pyvenv.cfg", "home = /usr/bin\n")
    touch(tmp_path / "env" / "lib" / "site.py")
    for ignored in ("__pycache__/web.py", ".git/hooks/x.py", "node_modules/pkg/a.py", ".cache/b.py",
                    "logs/c.py"):
        touch(tmp_path / ignored)
    return tmp_path


def watcher_of(app: Path, **extra) -> Watcher:  # type: ignore[no-untyped-def]
    settings = {"paths": [str(app)], "patterns": ["*.py", "*.html"], "ignore": [str(app / "logs")],
                "debounce": 0.1, "interval": 0.2, "signal": "SIGHUP", **extra}
    validate_reload(settings)
    return Watcher(settings)


def test_it_watches_the_apps_code_and_templates_only(app: Path) -> None:
    assert sorted(Path(p).relative_to(app).as_posix() for p in watcher_of(app).snapshot) == [
        "templates/page.html", "web.py"]


def test_a_change_is_reported_once_after_the_debounce(app: Path) -> None:
    watcher = watcher_of(app)
    assert watcher.poll(now=100.0) is None
    touch(app / "web.py", "x = 2\n")
    assert watcher.poll(now=100.25) is None, "within the debounce"
    assert watcher.next_wakeup(now=100.25) == pytest.approx(0.1)
    assert watcher.poll(now=100.36) == str(app / "web.py")
    assert watcher.poll(now=100.6) is None, "reported once"


def test_a_burst_of_saves_is_one_reload_naming_the_first_file(app: Path) -> None:
    watcher = watcher_of(app)
    watcher.poll(now=0.0)
    touch(app / "templates" / "page.html", "<p>two</p>")
    assert watcher.poll(now=0.2) is None
    touch(app / "web.py", "x = 3\n")
    assert watcher.poll(now=0.31) is None, "another change inside the debounce waits for quiet"
    assert watcher.poll(now=0.42) == str(app / "templates" / "page.html")


def test_new_and_removed_files_count(app: Path) -> None:
    watcher = watcher_of(app, debounce=0)
    watcher.poll(now=0.0)
    touch(app / "views.py")
    assert watcher.poll(now=0.2) == str(app / "views.py")
    (app / "views.py").unlink()
    assert watcher.poll(now=0.4) == str(app / "views.py")


def test_virtualenvs_caches_and_dot_folders_never_count(app: Path) -> None:
    watcher = watcher_of(app, debounce=0)
    watcher.poll(now=0.0)
    for ignored in ("env/lib/site.py", "env/lib/new.py", "__pycache__/web.py", ".git/hooks/x.py",
                    "node_modules/pkg/a.py", ".cache/b.py", "logs/c.py", "web.pyc", "data.sqlite3", ".#web.py"):
        touch(app / ignored)
    assert watcher.poll(now=0.2) is None
    assert watcher.poll(now=0.4) is None


@pytest.mark.parametrize(("reload", "words"), [
    ({"paths": []}, "needs 'paths'"),
    ({"paths": ["/x"], "patterns": "*.py"}, "list of file name patterns"),
    ({"paths": ["/x"], "debounce": -1}, "between 0 and 60"),
    ({"paths": ["/x"], "signal": "SIGNOPE"}, "not a signal name"),
])
def test_a_bad_reload_setting_is_refused_by_the_spec(reload: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Spec(name="x", argv=["true"], reload=reload)


def test_a_spec_without_reload_reads_as_before() -> None:
    spec = Spec(name="x", argv=["true"])
    data = spec.to_dict()
    del data["reload"]  # a spec.json written before the setting existed
    assert Spec.from_dict(data).reload is None
