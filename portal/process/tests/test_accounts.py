"""portal/process/accounts.py without Django: the uid range setting, the folders given to an
account, and the portal's bytecode shared with the hosted users."""

from __future__ import annotations

import os
import stat

import pytest

from portal.process import accounts


@pytest.mark.parametrize("text,message", [
    ("40000", "is not a range"), ("a-b", "is not a range"), ("500-600", "must lie above 999"),
    ("5000-4000", "must not be above its last"),
])
def test_a_bad_uid_range_says_what_a_good_one_is(text, message):
    with pytest.raises(ValueError, match=message):
        accounts.parse_uid_range(text)
    assert accounts.parse_uid_range(" 40000-49999 ") == (40000, 49999)


def test_the_portal_s_bytecode_is_made_readable_and_missing_bytecode_compiled(tmp_path):
    package = tmp_path / "gateways"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "server.py").write_text("X = 1\n")
    cache = package / "__pycache__"
    cache.mkdir()
    private = cache / "old.cpython-311.pyc"
    private.write_bytes(b"x")
    private.chmod(0o600)
    (tmp_path / "var" / "__pycache__").mkdir(parents=True)
    secret = tmp_path / "var" / "__pycache__" / "keep.pyc"
    secret.write_bytes(b"x")
    secret.chmod(0o600)
    old = os.umask(0o077)
    try:
        accounts.share_bytecode(str(tmp_path))
        # The kind's folder is shared only once its adapter names it (hosted_code).
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        accounts.share_bytecode(str(tmp_path), shared=["gateways"])
    finally:
        os.umask(old)
    assert stat.S_IMODE(private.stat().st_mode) == 0o644
    compiled = [p for p in cache.iterdir() if p.name.startswith("server.")]
    assert compiled and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in compiled)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600  # var/ is never walked


def test_a_folder_given_to_an_account_is_not_followed_through_a_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "home").symlink_to(target)
    with pytest.raises(OSError):
        accounts.own_folder(str(tmp_path / "home"), None)
    accounts.own_folder(str(tmp_path / "parent" / "own"), None)
    assert stat.S_IMODE((tmp_path / "parent" / "own").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "parent").stat().st_mode) == 0o711


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can try the installation as another user")
def test_an_installation_other_users_cannot_read_is_said_with_the_folder_to_open(tmp_path):
    import shutil
    import sys
    from pathlib import Path

    source = Path(accounts.__file__).resolve().parents[2]
    tmp_path.chmod(0o755)
    base = tmp_path / "portal"
    (base / "portal" / "process").mkdir(parents=True)
    shutil.copy(source / "portal" / "process" / "sandbox.py", base / "portal" / "process" / "sandbox.py")
    for folder in (base, base / "portal", base / "portal" / "process"):
        folder.chmod(0o755)
    (base / "portal" / "process" / "sandbox.py").chmod(0o644)
    assert accounts.installation_problem(str(base), sys.executable) is None
    accounts._usable.clear()
    base.chmod(0o711)  # passable, not listable: `python -m gateways.server` would find no package
    problem = accounts.installation_problem(str(base), sys.executable)
    assert problem is not None and f"{base} is not readable by other users (chmod o+rx {base})" in problem
    accounts._usable.clear()
    tmp_path.chmod(0o700)
    problem = accounts.installation_problem(str(base), sys.executable)
    assert problem is not None and f"{tmp_path} is closed to other users" in problem
    accounts._usable.clear()


def test_a_uid_is_claimed_host_wide_by_one_installation_until_its_var_is_gone(tmp_path):
    registry = str(tmp_path / "registry")
    first, second = tmp_path / "first-var", tmp_path / "second-var"
    first.mkdir()
    second.mkdir()
    assert accounts.claim_uid(40000, str(first), registry) is None
    assert accounts.claim_uid(40000, str(first), registry) is None  # again: still its own
    assert accounts.claim_uid(40000, str(second), registry) == str(first)
    assert accounts.claim_uid(40001, str(second), registry) is None
    first.rmdir()  # that portal is gone: its claims lapse
    assert accounts.claim_uid(40000, str(second), registry) is None
    assert (tmp_path / "registry" / "40000").read_text() == f"{second}\n"
