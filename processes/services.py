"""What happens to definitions of every kind, shared by the pages, the CLI, the API, the admin and merges.

Each function checks the actor's permission itself, so no entry point can forget it. The model
says what goes into the history (``Definition.AUDITED_FIELDS``, ``SECRET_FIELDS``: recorded only as
"changed"); the adapter's label names the kind in messages.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import connections, models, router, transaction

from portal import audit, roles
from processes import control
from processes.kinds import adapter_of
from processes.models import Definition

# Why the definition cannot be deleted now ("" when it can): the same for every kind.
delete_blocker = control.delete_blocker


def require_admin(user: Any, verb: str, model: type[Definition] | Definition) -> None:
    if not roles.can_administer(user):
        raise PermissionDenied(
            f"Only an Administrator may {verb} {adapter_of(model).label} definitions; ask an administrator "
            "for that role."
        )


def insert_rows(model: type[models.Model], objs: list[Any]) -> None:
    """INSERT ``objs`` (new rows of ``model``) with one statement executed for each row
    (``executemany``), each value made as bulk_create makes it (the field's pre_save, then
    get_db_prep_save). Written by hand because bulk_create compiles a statement per batch of
    rows (about 40 definitions on SQLite, a placeholder per value) and that compilation cost more
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
    """Definitions of one model saved by one merge, written together at its end: the new rows with
    one INSERT executed for each (:func:`insert_rows`), the changed ones with one UPDATE per set of
    new values (a merge changes many definitions the same way), and their history entries with
    one INSERT, instead of two queries each. (Django's bulk_update builds a CASE per field and
    row: slower than that.)

    Each definition still goes through :func:`save_definition` (the permission, the running
    check, the history entry it gets); only the writing waits for :meth:`write`, which the
    merge calls inside its transaction. Definitions and AuditEntry have no save() override and no
    post_save receiver, so bulk writes skip nothing.
    """

    def __init__(self, model: type[Definition]) -> None:
        self.model = model
        # The definition's own columns: what a form may change (a merge never writes the runtime state).
        self.columns = [model._meta.get_field(f).attname for f in (*model.AUDITED_FIELDS, "changed_by")]
        self.created: list[tuple[Definition, dict[str, Any]]] = []
        self.changed: list[tuple[Definition, Definition, dict[str, Any]]] = []  # new, current, history

    def write(self) -> None:
        from django.utils import timezone

        from portal.models import AuditEntry

        model = self.model
        created = [obj for obj, _ in self.created]
        insert_rows(model, created)
        names = [obj.name for obj in created]
        pks: dict[str, int] = {}
        for i in range(0, len(names), 500):  # SQLite takes a limited number of parameters per query
            pks.update(model.objects.filter(name__in=names[i:i + 500]).values_list("name", "pk"))
        for obj in created:
            obj.pk = pks[obj.name]
        now = timezone.now()
        groups: dict[tuple[Any, ...], list[int]] = {}
        for obj, current, _ in self.changed:
            obj.changed_at = now
            values = tuple((c, getattr(obj, c)) for c in self.columns
                           if c == "changed_by_id" or getattr(obj, c) != getattr(current, c))
            groups.setdefault(values, []).append(obj.pk)
        for values, group in groups.items():
            for i in range(0, len(group), 500):
                model.objects.filter(pk__in=group[i:i + 500]).update(changed_at=now, **dict(values))
        entries = []
        rows = [(obj, None, args) for obj, args in self.created] + [(o, c, args) for o, c, args in self.changed]
        for obj, current, args in rows:
            before = None if current is None else audit.snapshot(current, model.AUDITED_FIELDS)
            row = audit.entry(obj=obj, before=before, after=audit.snapshot(obj, model.AUDITED_FIELDS),
                              secret_fields=model.SECRET_FIELDS, **args)
            if row is not None:
                entries.append(row)
        insert_rows(AuditEntry, entries)
        kind = adapter_of(model)
        for obj, *_ in rows:
            kind.saved(obj)
        self.created, self.changed = [], []


def save_definition(form: forms.ModelForm, user: Any, actor: str | None = None, *,
                    current: Definition | None = None, batch: Batch | None = None,
                    restarting: bool = False) -> Any:
    """Create or change a definition from a valid form and record the history (secrets as "changed").

    ``current``: the definition as stored, when the caller has just read it (a merge, under its
    lock); ``batch``: write the row and its history with the batch's (see :class:`Batch`);
    ``restarting``: a restart follows (processes.editing), so a running process's runtime fields may change."""
    model = type(form.instance)
    creating = form.instance.pk is None
    require_admin(user, "create" if creating else "edit", model)
    if creating:
        current = None
    elif current is None:
        current = model.objects.get(pk=form.instance.pk)
    before = None if current is None else audit.snapshot(current, model.AUDITED_FIELDS)
    action = "created" if creating else "changed"
    if batch is not None:
        obj = form.save(commit=False)
        _prepare(obj, user, current, before, restarting)
        args = {"user": user, "actor": actor, "action": action}
        if creating:
            batch.created.append((obj, args))
        else:
            batch.changed.append((obj, current, args))
        return obj
    with transaction.atomic():
        obj = form.save(commit=False)
        _prepare(obj, user, current, before, restarting)
        obj.save()
        adapter_of(obj).saved(obj)
        audit.record(user=user, actor=actor, action=action, obj=obj, before=before,
                     after=audit.snapshot(obj, model.AUDITED_FIELDS), secret_fields=model.SECRET_FIELDS)
    return obj


def _prepare(obj: Definition, user: Any, current: Definition | None, before: dict[str, Any] | None,
             restarting: bool = False) -> None:
    """Refuse a change the running process would not follow (unless a restart follows); set who
    created and changed it."""
    if current is not None and not restarting:
        fields = type(obj).AUDITED_FIELDS
        after = audit.snapshot(obj, fields)
        control.check_definition_change(current, [f for f in fields if before and before[f] != after[f]])
    account = audit.account_of(user)
    if current is None:
        obj.created_by = account
    obj.changed_by = account


def delete_definition(obj: Definition, user: Any, actor: str | None = None) -> None:
    """Delete it, unless it is live; its history stays, and its hosted folder goes once the delete is committed."""
    require_admin(user, "delete", obj)
    obj.refresh_from_db()
    if blocker := delete_blocker(obj):
        raise control.ControlError(blocker)
    model = type(obj)
    with transaction.atomic():
        audit.record(user=user, actor=actor, action="deleted", obj=obj,
                     before=audit.snapshot(obj, model.AUDITED_FIELDS), after=None, secret_fields=model.SECRET_FIELDS)
        adapter_of(obj).forget_hosted_folder(obj)
        obj.delete()
