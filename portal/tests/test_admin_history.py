"""The history of definitions in the Django admin: visible, and read-only."""

import pytest

from gateways.tests.factories import form_data
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_an_administrator_reads_the_history_in_the_admin(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="admin-secret-1"))
    admin_client_.post("/gateways/PyGate/edit/", form_data(port="55002", use_passphrase="on", passphrase="admin-secret-2"))
    html = admin_client_.get("/admin/portal/auditentry/").content.decode()
    assert "PyGate" in html and "Passphrase: changed" in html
    assert "Port: 55001 → 55002" in html
    assert "admin-secret" not in html and "pbkdf2" not in html


def test_the_history_cannot_be_added_changed_or_deleted(admin_client_):
    admin_client_.post("/gateways/new/", form_data())
    entry = AuditEntry.objects.get()
    assert admin_client_.get("/admin/portal/auditentry/add/").status_code == 403
    response = admin_client_.post(f"/admin/portal/auditentry/{entry.pk}/change/", {"actor_name": "forged"})
    assert response.status_code == 403
    assert admin_client_.post(f"/admin/portal/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get().actor_name == "ada"


def test_the_admin_never_shows_the_verifier(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="admin-secret-1"))
    from gateways.models import Gateway

    pk = Gateway.objects.get().pk
    html = admin_client_.get(f"/admin/gateways/gateway/{pk}/change/").content.decode()
    assert "pbkdf2" not in html and "admin-secret" not in html


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_do_not_use_the_admin(role_client, role):
    response = role_client(role).get("/admin/portal/auditentry/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_an_administrator_role_member_is_staff(administrator):
    administrator.refresh_from_db()
    assert administrator.is_staff


def test_the_admin_shows_iso_dates_as_the_pages_do(admin_client_):
    from django.utils import timezone

    admin_client_.post("/gateways/new/", form_data())
    at = AuditEntry.objects.get().at.astimezone(timezone.get_current_timezone())
    html = admin_client_.get("/admin/portal/auditentry/").content.decode()
    assert at.strftime("%Y-%m-%d %H:%M:%S") in html
    assert at.strftime("%b.") not in html and "a.m." not in html and "p.m." not in html
