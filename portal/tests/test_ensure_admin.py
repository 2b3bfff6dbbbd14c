import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from portal.management.commands import ensure_admin


@pytest.fixture
def password_file(tmp_path, monkeypatch):
    path = tmp_path / "admin-password.txt"
    monkeypatch.setattr(ensure_admin, "PASSWORD_FILE", path)
    return path


@pytest.mark.django_db
def test_a_generated_password_is_printed_once_and_saved_for_the_owner_only(password_file, monkeypatch):
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    password = password_file.read_text().strip()
    assert password in out.getvalue()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(password) and admin.is_superuser and admin.is_staff
    assert admin.groups.filter(name="Administrator").exists()
    again = StringIO()
    call_command("ensure_admin", stdout=again)
    assert again.getvalue() == ""


@pytest.mark.django_db
def test_the_password_comes_from_the_environment_when_set(password_file, monkeypatch):
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "from-the-env-123")
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert get_user_model().objects.get(username="admin").check_password("from-the-env-123")
    assert "from-the-env-123" not in out.getvalue()
    assert not password_file.exists()


@pytest.mark.django_db
def test_nothing_is_created_when_a_user_exists(password_file, viewer):
    call_command("ensure_admin", stdout=StringIO())
    assert not get_user_model().objects.filter(username="admin").exists()
