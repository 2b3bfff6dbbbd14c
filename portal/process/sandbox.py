"""The sandbox of a managed process: Linux Landlock, applied between fork and exec.

Every process a keeper starts (a web application's engine, a gateway server) runs as the
portal's own user. Without more, its code could read var/ (the database, the secret key),
rewrite the portal's code and virtualenv (run at the portal's next start), signal the
portal's and other applications' processes, and read their /proc/<pid>/environ. The
Spec's ``sandbox`` (a policy, built on the Django side: processes/sandbox.py) says what
the process may touch; this module turns it into a Landlock ruleset.

Landlock is an unprivileged allow-list LSM: a process restricts itself and every process
it starts from then on (execve keeps the restriction with no_new_privs). Its ptrace hook
also denies /proc/<pid>/environ and /proc/<pid>/mem of processes outside the sandbox;
ABI 6 scopes signals and abstract unix sockets to it (LANDLOCK_SCOPE_SIGNAL,
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET). The keeper is outside it, so it still signals its
child (stop, SIGHUP reload); a gunicorn master or uvicorn's supervisor signals its own
workers inside it.

Where: the keeper has threads (the child's wait thread, a resolver's), so Popen's
preexec_fn is unsafe. The keeper runs this file as a tiny exec wrapper instead::

    python -I -S portal/process/sandbox.py --hidden VAR --read-only BASE --writable DIR ... -- argv...

which restricts itself and execv()s the engine (bench/webapps.py measures what it adds to a
start). It imports only the standard library, and little of it (-I -S: no site-packages, no
PYTHON* variables; nothing of the application's runs before the restriction).

Why ctypes by hand: the three Landlock syscalls and two structures are all there is; the
wrapper runs without site-packages (-S), and the Python packages on PyPI that wrap
Landlock were pre-releases or 0.x when this was written.

The carve-out (Landlock can only allow, never deny below an allowed folder): a folder
that must get fewer rights than its parent (var/ inside the readable host) is cut out by
giving no rule to each of its ancestors and one rule to each *sibling* of each ancestor,
enumerated when the process starts (:func:`plan`). The limits, by construction:

* an entry created later beside an ancestor (a new file in the project's root, or in /tmp
  when var/ lies in /tmp) is covered by no rule: refused, until the next start;
* an ancestor itself cannot be listed or written directly (``ls /`` fails; so does
  creating a file directly in /tmp when var/ lies in /tmp: the tests' layout);
* symbolic links among the siblings get no rule of their own: what they point to is
  allowed (or not) where it really is.
"""

from __future__ import annotations

import bisect
import ctypes
import os
import stat
import sys

# No json, argparse or typing here: each import of the wrapper is time added to every start
# (the policy comes as plain arguments: wrap()).
Policy = dict  # "mode", "hidden", "read_only", "writable", "rest", "mirror_dir": see policy()

# -- the kernel's interface (include/uapi/linux/landlock.h; x86_64 and arm64 numbers) --
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

ABI_NEEDED = 6  # signals and abstract sockets scoped
# What a rule on a file (not a folder) may grant.
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR | IOCTL_DEV
# No MAKE_CHAR / MAKE_BLOCK: a device node made in /tmp (a root process can) would reach the disk.
WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_SYM \
    | REFER | TRUNCATE
NONE = 0

# The device files a process needs; the rest of /dev (disks, memory) is hidden.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
           "/dev/pts", "/dev/shm")

MODES = ("on", "off", "required")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel's header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int | str:
    """The kernel's Landlock ABI version, or why there is none (a sentence)."""
    if not sys.platform.startswith("linux"):
        return f"Landlock is a Linux feature (this is {sys.platform})"
    libc = _libc()
    version = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    if version < 0:
        err = ctypes.get_errno()
        if err == 38:  # ENOSYS
            return "this kernel has no Landlock (built without CONFIG_SECURITY_LANDLOCK)"
        if err == 95:  # EOPNOTSUPP
            return "Landlock is disabled on this kernel (add landlock to the lsm= boot parameter)"
        return f"Landlock cannot be queried: {os.strerror(err)}"
    return int(version)


def handled_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


# -- the policy ------------------------------------------------------------------------------


def policy(*, mode: str = "on", hidden: list[str], read_only: list[str], writable: list[str],
           rest: str = "read-only", mirror_dir: str | None = None) -> Policy:
    """A Spec's ``sandbox``: folders hidden, read-only and writable; ``rest`` for the rest of the
    host ("read-only" or "writable"). The most precise folder wins; for the same folder, hidden
    wins over read-only, read-only over writable. ``mirror_dir``: a folder of the process's own
    (its run directory) for :func:`mirror_pythonpath`."""
    if mode not in MODES:
        raise ValueError(f"the sandbox mode {mode!r} is not one of {', '.join(MODES)}")
    if rest not in ("read-only", "writable"):
        raise ValueError("the sandbox's rest must be read-only or writable")
    return {"mode": mode, "hidden": [str(p) for p in hidden], "read_only": [str(p) for p in read_only],
            "writable": [str(p) for p in writable], "rest": rest,
            "mirror_dir": str(mirror_dir) if mirror_dir else None}


def portal_policy(*, var_dir: str, base_dir: str, run_dir: str, writable: list[str] | tuple[str, ...] = (),
                  read_only: list[str] | tuple[str, ...] = (), rest: str = "read-only", mode: str = "on",
                  extra_writable: list[str] | tuple[str, ...] = (), hidden: list[str] | tuple[str, ...] = ()) -> Policy:
    """The policy of a process the portal starts: var/ (and ``hidden``: the other hosted
    processes' folders) hidden but for ``run_dir``, its own folder (and what ``read_only`` names
    there: its virtualenv), the portal's installation read-only (its code, its .venv: both run at
    the portal's next start), ``writable`` (its application's folder), the temporary folders and
    ``extra_writable`` (PORTAL_SANDBOX_WRITABLE) writable."""
    installation = [base_dir]
    venv = os.path.join(base_dir, ".venv")
    if os.path.lexists(venv):
        installation.append(_real(venv))  # a link to the virtualenv elsewhere
    if sys.prefix != sys.base_prefix:
        installation.append(sys.prefix)  # the virtualenv the portal (and its keeper) runs in
    return policy(mode=mode, hidden=[var_dir, *hidden], read_only=[*installation, *read_only],
                  writable=[run_dir, *writable, "/tmp", "/var/tmp", *extra_writable],
                  rest=rest, mirror_dir=run_dir)


def _real(path: str) -> str:
    return os.path.realpath(path)


def _inside(path: str, folder: str) -> bool:
    """``path`` strictly beneath ``folder``."""
    return path != folder and (folder == "/" or path.startswith(folder + "/"))


def assignments(pol: Policy) -> dict[str, int]:
    """Each named folder (really, after links) and its rights; "/" has the rest's."""
    wanted: dict[str, int] = {"/": READ if pol.get("rest", "read-only") == "read-only" else WRITE}
    wanted["/dev"] = NONE
    wanted["/proc"] = wanted["/sys"] = READ  # the kernel's settings are not "the rest of the host"
    for path in (*DEVICES, *pol.get("writable", [])):
        wanted[_real(path)] = WRITE
    for path in pol.get("read_only", []):
        wanted[_real(path)] = READ
    for path in pol.get("hidden", []):
        wanted[_real(path)] = NONE
    # /proc/<pid> of every process that runs now (the portal's, the keeper's, other applications'):
    # their environ and cmdline. Landlock's ptrace hook refuses /proc/<pid>/mem of a process
    # outside the sandbox, but on this project's kernel not its environ: so /proc is carved out.
    # A process started later (by anyone: the workers of the application too) is covered by no
    # rule, so hidden as well; only this process's own (the engine's master, after the exec) and
    # the rest of /proc (cpuinfo, meminfo, self/ of the master...) stay readable.
    with os.scandir("/proc") as entries:
        wanted.update(("/proc/" + e.name, NONE) for e in entries
                      if e.name.isdigit() and e.name != str(os.getpid()))
    return {path: rights for path, rights in wanted.items() if os.path.lexists(path)}


def plan(pol: Policy) -> list[tuple[str, int]]:
    """The rules (path, rights) that give each path the rights of its nearest named folder."""
    wanted = assignments(pol)
    rules: list[tuple[str, int]] = []
    # Sorted, so that the named folders beneath a path are one slice (bisect): the carve-out
    # visits every entry of the folders it splits (2,000 in a busy /tmp).
    names = sorted(wanted)
    _place("/", wanted["/"], wanted, names, rules)
    return rules


def _beneath(path: str, names: list[str]) -> list[str]:
    prefix = "/" if path == "/" else path + "/"
    start = bisect.bisect_left(names, prefix)
    end = bisect.bisect_left(names, prefix[:-1] + chr(ord("/") + 1))
    return [n for n in names[start:end] if n != path]


def _place(path: str, rights: int, wanted: dict[str, int], names: list[str], rules: list[tuple[str, int]]) -> None:
    below = _beneath(path, names)
    if any(wanted[p] & rights != rights for p in below):
        # Something beneath needs less: no rule here; one for each entry (the carve-out).
        try:
            with os.scandir(path) as it:
                entries = [e.name for e in it if not e.is_symlink()]
        except OSError:
            # A folder this user may pass but not list (the hosted processes' 0711 root): its
            # entries get no rule (the user cannot see them either), the named ones beneath do.
            for p in _nearest(below):
                _place(p, wanted[p], wanted, names, rules)
            return
        for name in entries:
            child = "/" + name if path == "/" else path + "/" + name
            _place(child, wanted.get(child, rights), wanted, names, rules)
        return
    if rights:
        rules.append((path, rights))
    for p in _nearest(below):  # the nearest named folders beneath: they only add rights
        _place(p, wanted[p], wanted, names, rules)


def _nearest(below: list[str]) -> list[str]:
    """The outermost of ``below`` (sorted: a folder comes before what is inside it)."""
    nearest: list[str] = []
    for p in below:
        if not (nearest and _inside(p, nearest[-1])):
            nearest.append(p)
    return nearest


# -- applying it -----------------------------------------------------------------------------


class SandboxError(Exception):
    pass


def restrict(pol: Policy) -> int:
    """Restrict this process (and what it will start) to ``pol``; returns the ABI used."""
    abi = abi_version()
    if isinstance(abi, str):
        raise SandboxError(abi)
    if abi < ABI_NEEDED:
        raise SandboxError(f"Landlock ABI {abi} is older than {ABI_NEEDED}: signals cannot be scoped")
    handled = handled_rights(abi)
    libc = _libc()
    attr = _RulesetAttr(handled, 0, SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET)
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for path, rights in plan(pol):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue  # gone meanwhile: nothing to allow
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    rights &= FILE_RIGHTS
                rule = _PathBeneathAttr(rights & handled, fd)
                if rule.allowed_access and libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH,
                                                        ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    raise SandboxError(f"landlock_add_rule {path}: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            raise SandboxError(f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
        if libc.syscall(SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) < 0:
            raise SandboxError(f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


# -- the private mount namespace: when hosted code runs as the portal's own user ------------
# Landlock checks opening, writing and listing files, not chmod, chown or connect. A process of the
# portal's own user (the portal could not give it a user of its own: it does not run as root) may
# chmod var/ and the files in it, which it owns, so that every local user reads them. There, the
# wrapper also puts the process in a user and mount namespace of its own, as bubblewrap does: var/
# is covered by an empty read-only tmpfs and the portal's installation by a read-only bind mount
# (so chmod meets EROFS), the application's writable folders bound back as they were; a second,
# nested user namespace then locks those mounts, so the process cannot unmount them. Unprivileged:
# it needs only a kernel that lets users make user namespaces (most do).

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
# statvfs's f_flag bits and the mount flags a remount must keep (a user namespace may not clear them).
_KEPT = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
         (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))


def owns_hidden(pol: Policy) -> bool:
    """This process's user owns a hidden folder (var/): it is the portal's own user."""
    for path in pol.get("hidden", []):
        try:
            if os.stat(path).st_uid == os.geteuid():
                return True
        except OSError:
            continue
    return False


def userns_unavailable() -> str | None:
    """Why this kernel lets no unprivileged process make a user namespace (None: it does)."""
    for path, bad, why in (("/proc/sys/user/max_user_namespaces", "0", "user.max_user_namespaces is 0"),
                           ("/proc/sys/kernel/unprivileged_userns_clone", "0",
                            "kernel.unprivileged_userns_clone is 0"),
                           ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1",
                            "AppArmor restricts unprivileged user namespaces")):
        try:
            with open(path) as f:
                if f.read().strip() == bad:
                    return why
        except OSError:
            continue
    return None


def _enter_user_namespace(libc: ctypes.CDLL) -> None:
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0:
        raise SandboxError(f"unshare: {os.strerror(ctypes.get_errno())}")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def c(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    if libc.mount(c(source), c(target), c(fstype), ctypes.c_ulong(flags), c(data)) < 0:
        raise SandboxError(f"mount {target}: {os.strerror(ctypes.get_errno())}")


def _kept_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in _KEPT if flags & st)


def private_mounts(pol: Policy) -> None:
    """Enter the namespaces above: ``hidden`` folders (that hold no allowed one) covered, the
    ``read_only`` ones bound read-only, ``writable`` folders inside them bound back writable."""
    libc = _libc()
    _enter_user_namespace(libc)
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    allowed = [_real(p) for p in (*pol.get("read_only", []), *pol.get("writable", []))]
    hidden = [h for h in map(_real, pol.get("hidden", [])) if os.path.isdir(h)
              and not any(a == h or _inside(a, h) for a in allowed)]
    read_only = [r for r in map(_real, pol.get("read_only", [])) if os.path.isdir(r)]
    # Writable folders inside a read-only one: each its own mount first, which the read-only
    # bind of its parent then carries (a remount changes one mount, not those beneath it).
    for path in map(_real, pol.get("writable", [])):
        if os.path.isdir(path) and any(_inside(path, r) for r in read_only):
            _mount(libc, path, path, None, MS_BIND | MS_REC)
    for path in read_only:
        _mount(libc, path, path, None, MS_BIND | MS_REC)
        _mount(libc, None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _kept_flags(path))
    for path in hidden:
        _mount(libc, "none", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")
    _enter_user_namespace(libc)  # nested: the mounts above are locked together, beyond its reach


# -- what the keeper does with a Spec's sandbox ----------------------------------------------


def decide(pol: Policy | None) -> tuple[bool, str, str | None]:
    """(apply it?, the sentence for the startup details, an error that refuses the start)."""
    if pol is None:
        return False, "not sandboxed: the process's definition gives no sandbox", None
    mode = pol.get("mode", "on")
    if mode == "off":
        return False, "not sandboxed: PORTAL_SANDBOX=off", None
    abi = abi_version()
    reason = abi if isinstance(abi, str) else (
        f"Landlock ABI {abi} is older than {ABI_NEEDED} (signals cannot be scoped)" if abi < ABI_NEEDED else None)
    if reason is not None:
        text = f"not sandboxed: {reason}"
        if mode == "required":
            return False, text, f"{text}; PORTAL_SANDBOX=required refuses to start without it " \
                                "(set PORTAL_SANDBOX=on to start unsandboxed)"
        return False, text, None
    assert isinstance(abi, int)
    return True, describe(pol, abi), None


def describe(pol: Policy, abi: int) -> str:
    """The startup details' sentence: what the process may touch."""
    run_dir = pol.get("mirror_dir")
    hidden = [_real(h) for h in pol.get("hidden", [])]

    def said(path: str) -> str:
        if path == run_dir:
            return "its run directory"
        if any(_inside(h, _real(path)) for h in hidden):  # the carve-out: no rule on the folder itself
            return f"{path} (only what was in it before the start: var/ lies inside it)"
        return path

    writable = [said(p) for p in pol.get("writable", [])]
    rest = "read-only" if pol.get("rest", "read-only") == "read-only" else "writable"
    return (f"sandboxed (Landlock ABI {abi}): var/ hidden ({', '.join(pol.get('hidden', []))}), the portal's code "
            f"read-only, writable: {', '.join(writable)}, /dev/shm, /dev (null, tty, urandom…); the rest of the host "
            f"{rest}; signals and abstract sockets only to its own processes")


OPTIONS = {"--hidden": "hidden", "--read-only": "read_only", "--writable": "writable"}


def wrap(argv: list[str], pol: Policy) -> list[str]:
    """The command that runs ``argv`` restricted to ``pol`` (this file as an exec wrapper)."""
    args = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--rest", pol.get("rest", "read-only")]
    for option, key in OPTIONS.items():
        for path in pol.get(key, []):
            args += [option, path]
    if pol.get("mirror_dir"):
        args += ["--mirror-dir", pol["mirror_dir"]]
    if not pol.get("namespace", True):
        args += ["--namespace", "off"]
    return [*args, "--", *argv]


def parse(args: list[str]) -> tuple[Policy, list[str]]:
    """wrap()'s arguments back into (policy, command); ValueError when they are not."""
    pol: Policy = {"hidden": [], "read_only": [], "writable": [], "rest": "read-only", "mirror_dir": None}
    i = 0
    while i < len(args) and args[i] != "--":
        if i + 1 >= len(args):
            raise ValueError(f"{args[i]} needs a value")
        option, value = args[i], args[i + 1]
        if option in OPTIONS:
            pol[OPTIONS[option]].append(value)
        elif option == "--rest" and value in ("read-only", "writable"):
            pol["rest"] = value
        elif option == "--mirror-dir":
            pol["mirror_dir"] = value
        elif option == "--namespace" and value in ("on", "off"):
            pol["namespace"] = value == "on"
        else:
            raise ValueError(f"unknown option {option} {value}")
        i += 2
    if i + 1 >= len(args):
        raise ValueError("no command after --")
    return pol, args[i + 1:]


def mirror_pythonpath(pol: Policy, environ: dict[str, str]) -> None:
    """Replace each PYTHONPATH folder that holds a hidden one (the portal's root holds var/) by
    a mirror of links to its other entries, in the policy's ``mirror_dir``.

    The hidden folder's ancestors get no rule, so they cannot be listed; Python's import system
    lists each folder of its path first, and would find no module there (``gateways``, which
    a gateway server and a client in a web application import). The mirror lists; its links
    lead to folders the rules allow. Written before the restriction, at each start.
    """
    folder = pol.get("mirror_dir")
    hidden = [_real(p) for p in pol.get("hidden", [])]
    if not folder or not environ.get("PYTHONPATH") or not hidden:
        return
    entries = environ["PYTHONPATH"].split(os.pathsep)
    for index, entry in enumerate(entries):
        real = _real(entry) if entry else ""
        if not real or not any(_inside(h, real) for h in hidden):
            continue
        mirror = os.path.join(folder, f"pythonpath-{index}")
        os.makedirs(mirror, mode=0o700, exist_ok=True)
        for old in os.listdir(mirror):
            os.unlink(os.path.join(mirror, old))
        for name in os.listdir(real):
            target = os.path.join(real, name)
            if not any(h == target or _inside(h, target) for h in hidden):
                os.symlink(target, os.path.join(mirror, name))
        entries[index] = mirror
    environ["PYTHONPATH"] = os.pathsep.join(entries)


def main(args: list[str]) -> int:
    try:
        pol, command = parse(args)
    except ValueError as exc:
        print(f"portal sandbox: {exc}; usage: sandbox.py [--hidden|--read-only|--writable PATH]... "
              "[--rest read-only|writable] [--mirror-dir PATH] [--namespace on|off] -- COMMAND [ARG...]",
              file=sys.stderr)
        return 2
    try:
        mirror_pythonpath(pol, os.environ)  # type: ignore[arg-type]
        if pol.get("namespace", True) and owns_hidden(pol):
            try:
                private_mounts(pol)
            except (SandboxError, OSError) as exc:  # Landlock alone, as the startup details say
                print(f"portal sandbox: var/ not hidden by a mount namespace ({exc}); Landlock only",
                      file=sys.stderr)
        restrict(pol)
    except (SandboxError, OSError) as exc:
        print(f"portal sandbox: cannot restrict the process: {exc}", file=sys.stderr)
        return 126
    try:
        if "/" in command[0]:
            os.execv(command[0], command)
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"portal sandbox: cannot run {command[0]}: {exc.strerror or exc}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
