"""Which account a definition's processes run as, on this host (portal/process/accounts.py).

The rule, the same for every kind:

* the portal cannot switch users (it does not run as root): the portal's own user, and a
  "Run as" naming another user is refused with why;
* "Run as" empty: a dynamic user of its own (``HostedUser``: a uid from PORTAL_HOSTED_UIDS that
  no other definition has ever had and that no user or group of this host has);
* "Run as" a user: that user, if it exists on this host; root (or the portal's own user, which
  is root here) only when an Administrator ticked "Allow running as root" on the definition.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from portal import paths
from portal.process import accounts
from portal.process.accounts import Account, AccountError

ROOT_NAMES = ("root", "0")


def names_root(run_as: str) -> bool:
    run_as = (run_as or "").strip()
    if run_as in ROOT_NAMES:
        return True
    try:
        return accounts.named(run_as, "/").is_root if run_as else False
    except AccountError:
        return False


def hosted_users() -> Any:
    """The HostedUser model, from the app registry: the models ask this module who a definition
    runs as (``ManagedProcess.runs_as``), so importing them here would close a cycle."""
    from django.apps import apps

    return apps.get_model("processes", "HostedUser")


def own_uid(kind: str, obj: Any) -> int | None:
    """The dynamic uid the definition has been given, if any."""
    if obj is None or not obj.pk:
        return None
    HostedUser = hosted_users()

    return HostedUser.objects.filter(kind=kind, object_id=obj.pk).values_list("uid", flat=True).first()


def is_portal_user(run_as: str) -> bool:
    return run_as in (accounts.portal_user(), str(os.geteuid()))


def in_dynamic_range(run_as: str) -> bool:
    first, last = settings.PORTAL_HOSTED_UIDS
    return run_as.isdigit() and first <= int(run_as) <= last


def dynamic_range_message(run_as: str) -> str:
    first, last = settings.PORTAL_HOSTED_UIDS
    return (f"the uid {run_as} is one the portal gives to definitions as users of their own "
            f"(PORTAL_HOSTED_UIDS {first}-{last}), which are never shared: leave Run as empty for one, or name "
            "another user")


def dynamic_uid(kind: str, object_id: int) -> int:
    """The definition's uid, allocated on first use: the lowest free one of the range."""
    HostedUser = hosted_users()

    owner = str(paths.VAR_DIR)
    found = HostedUser.objects.filter(kind=kind, object_id=object_id).values_list("uid", flat=True).first()
    if found is not None:  # given before: still this installation's on this host?
        other = accounts.claim_uid(found, owner)
        if other:
            raise AccountError(f"its uid {found} is used by another portal on this host (var/ in {other}): give "
                               "each portal its own PORTAL_HOSTED_UIDS range")
        return found
    first, last = settings.PORTAL_HOSTED_UIDS
    for _ in range(20):  # two workers allocating at once: the loser of the unique uid tries the next
        taken = set(HostedUser.objects.filter(uid__gte=first, uid__lte=last).values_list("uid", flat=True))
        uid = next((u for u in range(first, last + 1) if u not in taken and not accounts.uid_has_entry(u)
                    and accounts.claim_uid(u, owner) is None), None)
        if uid is None:
            raise AccountError(f"every uid of PORTAL_HOSTED_UIDS ({first}-{last}) is given (on this host, other "
                               "portals' included): widen the range")
        try:
            with transaction.atomic():
                HostedUser.objects.create(kind=kind, object_id=object_id, uid=uid)
            return uid
        except IntegrityError:
            found = HostedUser.objects.filter(kind=kind, object_id=object_id).values_list("uid", flat=True).first()
            if found is not None:
                return found
    raise AccountError("no uid could be allocated (too many at once); start it again")


def cannot_switch() -> str | None:
    """Why hosted code runs as the portal's own user on this host (None: each gets a user of its own)."""
    if settings.PORTAL_HOSTED_USERS == "off":
        return "PORTAL_HOSTED_USERS=off"
    if not accounts.can_switch():
        return f"the portal runs as {accounts.portal_user()}, not as root, so it cannot switch users"
    from processes.kinds import all_adapters

    shared = [folder for kind in all_adapters() for folder in kind.hosted_code]
    return accounts.installation_problem(str(settings.BASE_DIR), shared=shared)


def account_of(kind: str, obj: Any, home: str) -> Account | None:
    """The account ``obj``'s processes run as on this host; None: the portal's own user (it cannot
    switch). Raises AccountError, whose message says the fix, when it may not start."""
    run_as = (obj.run_as or "").strip()
    reason = cannot_switch()
    if reason and settings.PORTAL_HOSTED_USERS == "required":
        raise AccountError(f"it would run as the portal's own user ({reason}); PORTAL_HOSTED_USERS=required refuses "
                           "that (set it to auto to start it all the same)")
    if reason:
        if run_as and not is_portal_user(run_as):
            raise AccountError(f"it is to run as {run_as}, but it can only run as the portal's own user "
                               f"({accounts.portal_user()}): {reason}; leave Run as empty, or let the portal switch")
        return None
    if not run_as:
        return accounts.dynamic(dynamic_uid(kind, obj.pk), home)
    if in_dynamic_range(run_as):
        raise AccountError(dynamic_range_message(run_as))
    account = accounts.named(run_as, home)
    if account.is_root and not obj.allow_root:
        raise AccountError(f"it is to run as {account.name}, which is root: an Administrator must tick "
                           "\"Allow running as root\" on it, or leave Run as empty for a user of its own")
    return account


def describe(kind: str, obj: Any) -> str:
    """Who it runs as, for its page: said without allocating anything."""
    run_as = (obj.run_as or "").strip()
    reason = cannot_switch()
    if reason:
        return f"the portal's own user ({accounts.portal_user()}): {reason}"
    if not run_as:
        uid = own_uid(kind, obj)
        return f"its own user (uid {uid})" if uid is not None else "its own user (a uid is given at its first start)"
    return "root (allowed by an Administrator)" if names_root(run_as) else run_as


def who(kind: str, obj: Any, run_as: str | None = None) -> str:
    """Who its code runs as, in a few words for a warning (``run_as``: a form's value, not yet saved):
    "its own user", a user's name, "root", or the portal's user by name when it cannot switch."""
    if cannot_switch():
        return f"the portal's user ({accounts.portal_user()})"
    if run_as is None:
        run_as = obj.run_as if obj is not None else ""
    run_as = (run_as or "").strip()
    if run_as:
        return "root" if names_root(run_as) else run_as
    uid = own_uid(kind, obj)
    return f"its own user (uid {uid})" if uid is not None else "its own user"


def check_account(kind: str, obj: Any, run_as: str, home: str) -> Account | None:
    """Who a check of a definition being saved (its import) runs as: the user it will run as (its
    named user, or its dynamic user once it has one), else ``nobody``: never the portal."""
    if cannot_switch():
        return None
    run_as = (run_as or "").strip()
    if run_as:
        try:
            return accounts.named(run_as, home)
        except AccountError:
            pass  # the form says the user is unknown; the check runs as nobody meanwhile
    elif (uid := own_uid(kind, obj)) is not None:
        return accounts.dynamic(uid, home)
    return accounts.nobody(home)


RUN_AS_PATTERN = r"[a-z_][a-z0-9_.-]{0,30}\$?|[0-9]{1,10}"
RUN_AS_MESSAGE = ("Run as takes a user name (at most 32 lower-case letters, digits, _ . -) or a uid, e.g. "
                  "www-data; leave it empty for a user of its own.")
# The forms' messages for the field (their Meta.error_messages): a name too long says what a name is.
RUN_AS_ERRORS = {"run_as": {"max_length": RUN_AS_MESSAGE}}


def check_run_as(form: Any, data: dict[str, Any]) -> None:
    """The form's rule for Run as and Allow running as root, the same for every kind: a user name
    (or uid), root only with the box ticked, the box only with root; a user this host lacks, or a
    portal that cannot switch, is said as a warning (the start refuses it, saying the same)."""
    import re

    run_as = (data.get("run_as") or "").strip()
    data["run_as"] = run_as
    if run_as and not re.fullmatch(RUN_AS_PATTERN, run_as):
        form.add_error("run_as", RUN_AS_MESSAGE)
        return
    if in_dynamic_range(run_as):
        message = dynamic_range_message(run_as)
        form.add_error("run_as", message[0].upper() + message[1:] + ".")
        return
    root = names_root(run_as)
    if root and not data.get("allow_root"):
        form.add_error("run_as", "Running as root lets its code do anything on this host: tick \"Allow running "
                                 "as root\" if that is meant, or leave Run as empty for a user of its own.")
    elif data.get("allow_root") and not root:
        form.add_error("allow_root", "\"Allow running as root\" applies only when Run as is root: untick it, or "
                                     "set Run as to root.")
    if not run_as:
        return
    reason = cannot_switch()
    if reason and not is_portal_user(run_as):
        form.add_warning("run_as", f"It cannot run as {run_as} here: {reason}. Its start will be refused until "
                                   "the portal can switch users.")
    elif not root:
        try:
            accounts.named(run_as, "/")
        except AccountError as exc:
            form.add_warning("run_as", f"{str(exc)[0].upper()}{str(exc)[1:]}; its start is refused until then.")
            return
    if sharing := others_running_as(run_as, form.instance):
        form.add_warning("run_as", f"{', '.join(sharing)} also run{'s' if len(sharing) == 1 else ''} as {run_as}: "
                                   "processes of one user can signal each other and read each other's files; "
                                   "leave Run as empty for a user of its own.")


def others_running_as(run_as: str, instance: Any) -> list[str]:
    """The other definitions (every kind) whose Run as names the same user."""
    from processes.kinds import all_adapters

    names: list[str] = []
    for kind in all_adapters():
        rows = kind.model.groups.filter(run_as=run_as)
        if instance is not None and instance.pk and isinstance(instance, kind.model):
            rows = rows.exclude(pk=instance.pk)
        names += [f"{kind.label} {name}" for name in rows.values_list("name", flat=True)[:5]]
    return names
