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
