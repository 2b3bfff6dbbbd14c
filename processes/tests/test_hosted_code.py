"""The portal's code that hosted processes import is opened to their users: the core's folders, and
each kind's, which its adapter names (``hosted_code``), as a start as root does."""

from __future__ import annotations

import os
import stat

import pytest
from django.conf import settings

from portal.process import accounts
from processes.accounts import cannot_switch
from processes.adapters import all_adapters

ROOT = settings.BASE_DIR


def test_each_kind_names_the_folders_of_the_code_its_processes_run():
    folders = {folder for kind in all_adapters() for folder in kind.hosted_code}
    # A gateway's server and its protocol; a web application's engines' launchers.
    for module in ("gateways/server.py", "gateways/protocol/__init__.py", "webapps/runtime/serve/__init__.py"):
        assert os.path.dirname(module) in folders, module
    assert all((ROOT / folder).is_dir() for folder in folders)
    assert not folders & set(accounts.SHARED_FOLDERS), "the core's own folders are the core's to name"


@pytest.mark.skipif(os.geteuid() != 0, reason="the bytecode is shared only where the portal switches users (root)")
def test_a_start_as_root_opens_the_bytecode_of_every_kind_s_hosted_code():
    if settings.PORTAL_HOSTED_USERS == "off":
        pytest.skip("PORTAL_HOSTED_USERS=off: hosted code runs as the portal's user")
    caches = [ROOT / folder / "__pycache__" for kind in all_adapters() for folder in kind.hosted_code]
    closed = []
    for cache in caches:
        cache.mkdir(exist_ok=True)
        mark = cache / "closed-by-test.cpython-0.pyc"
        mark.write_bytes(b"")
        mark.chmod(0o600)
        closed.append(mark)
    accounts._usable.clear()  # the check runs once per process: this is a new one
    try:
        assert cannot_switch() is None
        assert [stat.S_IMODE(mark.stat().st_mode) for mark in closed] == [0o644] * len(closed)
    finally:
        for mark in closed:
            mark.unlink()
