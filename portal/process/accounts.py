"""Who a managed process runs as: a user of its own, never the portal's.

A gateway runs whatever code its clients send; a web application and its requirements build are
third-party code. Landlock (``sandbox.py``) is one wall; privilege separation is the first: when
the portal may switch users (it runs as root, as in most containers), every process it starts
for a definition (the engine and its workers, the import check, the virtualenv build, a gateway
server) runs as that definition's own account. It then cannot read or chmod the portal's files
(``var/`` is 0700 and its files 0600, owned by the portal's user), connect to the portal's unix
sockets (a connect needs write permission on the socket file), signal the portal or another
definition's processes, or read their ``/proc/<pid>/environ``: the kernel's ordinary checks,
which need no sandbox.

The account, by default, is a *dynamic user*, as systemd's ``DynamicUser=`` makes one: a uid
(and a gid of the same number) from ``PORTAL_HOSTED_UIDS`` given to one definition for good,
with no entry in /etc/passwd (nothing on the host is changed; a uid that has an entry there is
skipped, so no real user is ever shared). Two definitions never share one, so one application
cannot read another's files or connect to its socket. An operator may name an existing user
instead ("Run as"); root only where an Administrator allowed it on that definition.

When the portal cannot switch (it runs as an ordinary user), hosted code runs as the portal's
user: ``sandbox.py`` then hides ``var/`` with a private mount namespace where the kernel allows
it, and the startup details and Activity say so.

Django-free: the keeper and the worker's checks use it.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# The dynamic users' uids. Below 65536, so that a container with the usual 65536-uid mapping has
# them; away from Debian's system range (100-999), systemd's dynamic users (61184-65519) and the
# first users adduser gives out (1000 upwards).
DEFAULT_UID_RANGE = (40000, 49999)
ROOT = 0


class AccountError(Exception):
    """The account cannot be had on this host; the message says why and what to do."""


@dataclass(frozen=True)
class Account:
    """A user a managed process runs as. ``name`` is how pages say it ("uid 40001" for a dynamic
    user, which has no name); ``home`` is its folder (HOME), which it owns."""

    uid: int
    gid: int
    name: str
    home: str
    dynamic: bool = False
    groups: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Account | None:
        if not data:
            return None
        return cls(uid=int(data["uid"]), gid=int(data["gid"]), name=str(data["name"]), home=str(data["home"]),
                   dynamic=bool(data.get("dynamic")), groups=[int(g) for g in data.get("groups") or []])

    def popen_kwargs(self) -> dict[str, Any]:
        """What ``subprocess.Popen`` needs to start a process as this account (set in the child
        between fork and exec by CPython itself: safe in a process with threads, unlike a
        preexec_fn). The supplementary groups are this account's only: none of the portal's."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def env(self) -> dict[str, str]:
        """HOME, USER and LOGNAME of this account (not the portal's: pip and many programs write
        their caches under HOME)."""
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    @property
    def is_root(self) -> bool:
        return self.uid == ROOT

    def describe(self) -> str:
        if self.dynamic:
            return f"its own user (uid {self.uid}, made for it by the portal)"
        return f"{self.name} (uid {self.uid})"


def can_switch() -> bool:
    """Whether this process may start others as another user: it runs as root."""
    return os.geteuid() == ROOT


_usable: dict[tuple[str, str, tuple[str, ...]], str | None] = {}


def installation_problem(base_dir: str, python: str | None = None, shared: Sequence[str] = ()) -> str | None:
    """Why a user of its own could not use the portal's installation (None: it can).

    Every process the portal starts runs a little of the portal first (the sandbox's wrapper; a
    gateway's server; pip for a build) with the portal's interpreter: both must be open to other
    users. Tried once per process, by running the interpreter as ``nobody``. ``shared``: the
    folders of the kinds' code that their hosted processes import (see :func:`share_bytecode`).
    """
    python = python or sys.executable
    shared = tuple(shared)
    key = (base_dir, python, shared)
    if key not in _usable:
        probe = os.path.join(base_dir, "portal", "process", "sandbox.py")
        try:
            # Python lists each folder of its path to import from it (gateways.server from the
            # portal's folder), so the folder must be readable, not only passable.
            done = run([python, "-I", "-S", "-c", "import os, sys; os.listdir(sys.argv[1]); open(sys.argv[2]).close()",
                        base_dir, probe], nobody("/"),
                       capture_output=True, timeout=10, stdin=subprocess.DEVNULL, cwd="/")
            failed = done.returncode != 0
        except (OSError, subprocess.SubprocessError):
            failed = True
        if not failed:
            _usable[key] = None
            share_bytecode(base_dir, shared)
        else:
            closed = _closed_folder(os.path.realpath(python)) or _closed_folder(probe)
            where = f"{closed} is closed to other users" if closed else \
                f"{base_dir} is not readable by other users (chmod o+rx {base_dir})"
            _usable[key] = (f"a user of its own could not run the portal's Python ({python}) or read its code "
                            f"({base_dir}): {where}; install the portal and its Python where other users may read "
                            f"them (chmod o+x {closed or base_dir}, or make PYTHON=/usr/bin/python3)")
    return _usable[key]


# The portal's own code that hosted processes import (the sandbox's wrapper, the keeper's helpers):
# the folders, not walked below, and the packages' __init__ files beside them. Each kind adds the
# folders of its own hosted code (a gateway's server, a web application's launcher) through its
# adapter's ``hosted_code``. Nothing else of the portal runs as a hosted user.
SHARED_FOLDERS = ("portal", "portal/process")


def share_bytecode(base_dir: str, shared: Sequence[str] = ()) -> None:
    """Make the portal's compiled modules readable by the hosted users.

    The portal's processes write ``__pycache__`` under its private umask (077): a hosted user could
    not read those files, so each of its starts compiled the portal's modules again from source
    (a gateway's start took about a third longer). Once per process that switches users: compile
    what is missing or stale under umask 022, and open the existing files for reading (0644).
    """
    import compileall

    old = os.umask(0o022)
    try:
        for folder in (*SHARED_FOLDERS, *shared):
            if os.path.isdir(os.path.join(base_dir, folder)):
                compileall.compile_dir(os.path.join(base_dir, folder), maxlevels=0, quiet=2)
    finally:
        os.umask(old)
    for folder in (*SHARED_FOLDERS, *shared):
        cache = os.path.join(base_dir, folder, "__pycache__")
        try:
            names = os.listdir(cache)
        except OSError:
            continue
        for name in names:
            path = os.path.join(cache, name)
            try:
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode) and info.st_mode & 0o044 != 0o044:
                    os.chmod(path, 0o644)
            except OSError:
                continue


def _closed_folder(path: str) -> str | None:
    """The first folder on the way to ``path`` that others may not pass."""
    folder = os.path.dirname(path)
    chain = []
    while True:
        chain.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for folder in reversed(chain):
        try:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                return folder
        except OSError:
            return folder
    return None


def portal_user() -> str:
    """The portal's own user's name (or its uid when it has none)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def parse_uid_range(text: str) -> tuple[int, int]:
    """``"40000-49999"`` as (first, last); ValueError with the fix when it is not one."""
    try:
        first, last = (int(part) for part in text.strip().split("-", 1))
    except ValueError:
        raise ValueError(f"PORTAL_HOSTED_UIDS={text!r} is not a range such as 40000-49999") from None
    if not 1000 <= first <= last < 2**31 - 1:
        raise ValueError(f"PORTAL_HOSTED_UIDS={text!r}: the range must lie above 999 and its first number "
                         "must not be above its last (e.g. 40000-49999)")
    return first, last


def uid_has_entry(uid: int) -> bool:
    """A user or a group of this number exists on this host: a dynamic user must not be it."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            continue
    return False


# Host-wide: which installation of the portal has each dynamic uid (a file per uid holding that
# installation's var/ folder), as systemd keeps its dynamic users in /run/systemd/dynamic-uid/. Two
# portals on one host then never give the same uid to two definitions; a claim of an installation
# whose var/ is gone is taken over.
REGISTRY = os.environ.get("PORTAL_HOSTED_UIDS_REGISTRY") or "/var/lib/portal/hosted-uids"


def claim_uid(uid: int, owner: str, registry: str = REGISTRY) -> str | None:
    """Claim ``uid`` on this host for the installation whose var/ is ``owner``: None when it is
    this installation's (now or already), else the var/ folder of the installation that has it."""
    os.makedirs(registry, mode=0o700, exist_ok=True)
    path = os.path.join(registry, str(uid))
    holder = ""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            with os.fdopen(fd) as f:
                holder = f.read().strip()
            if holder == owner:
                return None
            if holder and os.path.isdir(holder):
                return holder
            os.unlink(path)  # an installation that is gone (or a claim never finished): free
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner + "\n")
        return None
    return holder or path


def dynamic(uid: int, home: str) -> Account:
    return Account(uid=uid, gid=uid, name=f"uid {uid}", home=home, dynamic=True)


def nobody(home: str) -> Account:
    """The host's ``nobody`` (65534 where it has no entry): who checks a definition that has no user yet."""
    try:
        entry = pwd.getpwnam("nobody")
        return Account(uid=entry.pw_uid, gid=entry.pw_gid, name="nobody", home=home)
    except KeyError:
        return Account(uid=65534, gid=65534, name="nobody", home=home)


def named(run_as: str, home: str) -> Account:
    """The existing user ``run_as`` (a name, or a number with an entry), with its primary group."""
    try:
        entry = pwd.getpwuid(int(run_as)) if run_as.isdigit() else pwd.getpwnam(run_as)
    except (KeyError, ValueError, OverflowError):
        if run_as.isdigit():
            raise AccountError(f"no user has the uid {run_as} on this host: give an existing user's name or uid, "
                               "or leave Run as empty for a user of its own") from None
        raise AccountError(f"there is no user {run_as!r} on this host: create it (useradd --system {run_as}) or "
                           "leave Run as empty for a user of its own") from None
    return Account(uid=entry.pw_uid, gid=entry.pw_gid, name=entry.pw_name, home=home, dynamic=False,
                   groups=[])


def own_folder(path: str, account: Account | None, mode: int = 0o700) -> None:
    """Make ``path`` a folder of ``account`` (the portal's user when None), ``mode``, its parents
    traversable (0711 where the portal makes them: others may pass, never list).

    The folder's contents belong to the account, so it is opened without following links and
    changed through its descriptor: a link put in its place is refused, never followed.
    """
    parent = os.path.dirname(path)
    _mkdirs(parent)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if account is not None and (info.st_uid, info.st_gid) != (account.uid, account.gid):
            os.fchown(fd, account.uid, account.gid)
        if stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def reset_if_owned_by_another(path: str, account: Account | None) -> bool:
    """Remove ``path`` when it is not ``account``'s (the portal's user's when None); True if it was.
    shutil.rmtree removes through descriptors and follows no link."""
    import shutil

    try:
        owner = os.lstat(path).st_uid
    except FileNotFoundError:
        return False
    if owner == (account.uid if account is not None else os.geteuid()):
        return False
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):  # a link or a file in its place
        os.unlink(path)
    return True


def _mkdirs(path: str) -> None:
    if os.path.isdir(path):
        return
    _mkdirs(os.path.dirname(path))
    try:
        os.mkdir(path, 0o711)
    except FileExistsError:
        return
    os.chmod(path, 0o711)  # whatever the umask


def run(argv: list[str], account: Account | None, **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` as ``account`` (as the portal's user when None)."""
    if account is not None:
        kwargs.update(account.popen_kwargs())
    return subprocess.run(argv, **kwargs)
