"""What happens to gateway definitions, shared by the views, the CLI and the API.

Each function checks the actor's permission itself, so no entry point can
forget it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connections, models, router, transaction

from gateways.forms import GatewayForm
from gateways.models import Gateway
from portal import audit, roles
from processes import control
from processes.adapters import adapter_of


def _require_admin(user: Any, verb: str) -> None:
    if not roles.can_administer(user):
        raise PermissionDenied(
            f"Only an Administrator may {verb} gateway definitions; ask an administrator "
            "for that role."
        )


def insert_rows(model: type[models.Model], objs: list[Any]) -> None:
    """INSERT ``objs`` (new rows of ``model``) with one statement executed for each row
    (``executemany``), each value made as bulk_create makes it (the field's pre_save, then
    get_db_prep_save). Written by hand because bulk_create compiles a statement per batch of
    rows (about 40 gateways on SQLite, a placeholder per value) and that compilation cost more
    than the rows' values; executemany prepares one statement once. The primary keys are not
    read back (SQLite's executemany returns no rows): the caller reads them when it needs them.
    """
    if not objs:
        return
    opts = model._meta
    if opts.parents:
        raise ValueError(f"{model.__name__} has a parent table: its rows cannot be inserted with one statement")
    connection = connections[router.db_for_write(model)]
    fields = [f for f in opts.local_concrete_fields if not f.primary_key and not f.generated]
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    rows = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
        rows.append([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


class Batch:
    """Definitions saved by one merge, written together at its end: the new rows with one
    INSERT executed for each (:func:`insert_rows`), the changed ones with one UPDATE per set of
    new values (a merge changes many definitions the same way), and their history entries with
    one INSERT, instead of two queries each. (Django's bulk_update builds a CASE per field and
    row: slower than that.)

    Each definition still goes through :func:`save_definition` (the permission, the running
    check, the history entry it gets); only the writing waits for :meth:`write`, which the
    merge calls inside its transaction. Gateway and AuditEntry have no save() override and no
    post_save receiver, so bulk writes skip nothing.
    """

    # The definition's own columns: what a form may change (a merge never writes the runtime state).
    COLUMNS = [Gateway._meta.get_field(f).attname
               for f in (*Gateway.AUDITED_FIELDS, "changed_by")]

    def __init__(self) -> None:
        self.created: list[tuple[Gateway, dict[str, Any]]] = []
        self.changed: list[tuple[Gateway, Gateway, dict[str, Any]]] = []  # new, current, history

    def write(self) -> None:
        from django.utils import timezone

        from portal.models import AuditEntry

        created = [g for g, _ in self.created]
        insert_rows(Gateway, created)
        names = [g.name for g in created]
        pks: dict[str, int] = {}
        for i in range(0, len(names), 500):  # SQLite takes a limited number of parameters per query
            pks.update(Gateway.objects.filter(name__in=names[i:i + 500]).values_list("name", "pk"))
        for gateway in created:
            gateway.pk = pks[gateway.name]
        now = timezone.now()
        groups: dict[tuple[Any, ...], list[int]] = {}
        for gateway, current, _ in self.changed:
            gateway.changed_at = now
            values = tuple((c, getattr(gateway, c)) for c in self.COLUMNS
                           if c == "changed_by_id" or getattr(gateway, c) != getattr(current, c))
            groups.setdefault(values, []).append(gateway.pk)
        for values, pks in groups.items():
            for i in range(0, len(pks), 500):
                Gateway.objects.filter(pk__in=pks[i:i + 500]).update(changed_at=now, **dict(values))
        entries = []
        rows = [(g, None, args) for g, args in self.created] + [(g, c, args) for g, c, args in self.changed]
        for gateway, current, args in rows:
            before = None if current is None else audit.snapshot(current, Gateway.AUDITED_FIELDS)
            row = audit.entry(obj=gateway, before=before, after=audit.snapshot(gateway, Gateway.AUDITED_FIELDS),
                              secret_fields=Gateway.SECRET_FIELDS, **args)
            if row is not None:
                entries.append(row)
        insert_rows(AuditEntry, entries)
        self.created, self.changed = [], []


def save_definition(form: GatewayForm, user: Any, actor: str | None = None, *,
                    current: Gateway | None = None, batch: Batch | None = None,
                    restarting: bool = False) -> Gateway:
    """Create or change a definition from a valid form and record the history.

    ``current``: the definition as stored, when the caller has just read it (a merge, under its
    lock); ``batch``: write the row and its history with the batch's (see :class:`Batch`);
    ``restarting``: a restart follows (processes.editing), so a running server's runtime fields may change."""
    creating = form.instance.pk is None
    _require_admin(user, "create" if creating else "edit")
    if not creating and current is None:
        current = Gateway.objects.get(pk=form.instance.pk)
    before = None if creating else audit.snapshot(current, Gateway.AUDITED_FIELDS)
    if batch is not None:
        gateway = form.save(commit=False)
        _prepare(gateway, user, current, before, restarting)
        args = {"user": user, "actor": actor, "action": "created" if creating else "changed"}
        if creating:
            batch.created.append((gateway, args))
        else:
            batch.changed.append((gateway, current, args))
        return gateway
    with transaction.atomic():
        gateway = form.save(commit=False)
        _prepare(gateway, user, current, before, restarting)
        gateway.save()
        audit.record(
            user=user,
            actor=actor,
            action="created" if creating else "changed",
            obj=gateway,
            before=before,
            after=audit.snapshot(gateway, Gateway.AUDITED_FIELDS),
            secret_fields=Gateway.SECRET_FIELDS,
        )
    return gateway


def _prepare(gateway: Gateway, user: Any, current: Gateway | None, before: dict[str, Any] | None,
             restarting: bool = False) -> None:
    """Refuse a change the running server would not follow (unless a restart follows); set who
    created and changed it."""
    if current is not None and not restarting:
        after = audit.snapshot(gateway, Gateway.AUDITED_FIELDS)
        changed = [f for f in Gateway.AUDITED_FIELDS if before and before[f] != after[f]]
        control.check_definition_change(current, changed)
    account = audit.account_of(user)
    if current is None:
        gateway.created_by = account
    gateway.changed_by = account


# Why the definition cannot be deleted now ("" when it can): the same for every kind.
delete_blocker = control.delete_blocker


def delete_definition(gateway: Gateway, user: Any, actor: str | None = None) -> None:
    _require_admin(user, "delete")
    gateway.refresh_from_db()
    if blocker := delete_blocker(gateway):
        raise control.ControlError(blocker)
    with transaction.atomic():
        before = audit.snapshot(gateway, Gateway.AUDITED_FIELDS)
        audit.record(
            user=user,
            actor=actor,
            action="deleted",
            obj=gateway,
            before=before,
            after=None,
            secret_fields=Gateway.SECRET_FIELDS,
        )
        adapter_of(gateway).forget_hosted_folder(gateway)
        gateway.delete()
