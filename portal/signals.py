"""Members of the Administrator role use the Django admin, which needs is_staff."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_migrate
from django.dispatch import receiver

from portal.roles import ADMINISTRATOR, ROLES, permissions_for

User = get_user_model()


@receiver(m2m_changed, sender=User.groups.through)
def keep_staff_flag_in_step_with_role(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    if action not in {"post_add", "post_remove", "post_clear"} or not isinstance(instance, User):
        return
    is_admin = instance.is_superuser or instance.groups.filter(name=ADMINISTRATOR).exists()
    if instance.is_staff != is_admin:
        User.objects.filter(pk=instance.pk).update(is_staff=is_admin)
        instance.is_staff = is_admin


@receiver(post_migrate)
def create_roles(sender: Any, **kwargs: Any) -> None:
    """Create the three role groups with their permissions, after every migrate.

    Permissions are created per app after that app's migrations, so they are
    created here first for every app: the roles need them all.
    """
    if sender.name != "portal":
        return
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in permissions_for(role):
            app_label, codename = perm.split(".")
            wanted += Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        group.permissions.set(wanted)
