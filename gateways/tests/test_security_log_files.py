"""A gateway's log file is a regular file of the portal's own, in a log folder.

Every Viewer reads it and the keeper appends to and rotates it, so an
administrator must not be able to point it at /etc/passwd, var/secret_key, the
database, another program's file or a FIFO: not in the form, not at start time
(the disk may change after the save), not on the detail page of an older
definition.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from gateways.forms import GatewayForm
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from gateways.tests.process_helpers import server_processes, start_and_wait
from portal import paths
from processes import tasks

pytestmark = pytest.mark.django_db

WHERE = "log files may be only in"


def log_error(path: str | Path, instance: Gateway | None = None) -> str:
    data = form_data(log_file=str(path))
    if instance is not None:
        data.update(name=instance.name, port=str(instance.port))
    form = GatewayForm(data, instance=instance)
    form.is_valid()
    return " ".join(form.errors.get("log_file", []))


@pytest.fixture
def log_dir() -> Path:
    paths.mkdir_private(paths.LOG_DIR)
    return paths.LOG_DIR


# "{var}" is the run's var/ folder, put in at run time: test ids stay the same in every process.
@pytest.mark.parametrize("target", [
    "/etc/passwd",
    "{var}/secret_key",
    "{var}/test.sqlite3",
    "{var}/log/../secret_key",
    "/tmp/gateway.log",
])
def test_a_log_file_outside_the_log_folders_is_refused_with_where_logs_may_go(log_dir, target):
    target = target.format(var=paths.VAR_DIR)
    message = log_error(target)
    assert message, f"{target} was accepted"
    assert f"{WHERE} {paths.LOG_DIR}" in message
    assert "PORTAL_LOG_ROOTS" in message


@pytest.mark.parametrize("folder, kind", [("gateways", "gateway"), ("webapps", "web application")])
def test_a_log_file_in_the_default_log_folder_of_any_kind_is_refused(log_dir, folder, kind):
    # Each kind's folder of default logs holds the files the portal made for its definitions: a
    # gateway writing there could append to (and rotate) a web application's log, or another gateway's.
    message = log_error(paths.LOG_DIR.resolve() / folder / "shop.log")
    assert f"{paths.LOG_DIR.resolve() / folder}, which holds each {kind}'s default log" in message
    assert WHERE in message


def test_a_path_inside_var_outside_var_log_is_refused_even_when_a_root_covers_var(log_dir, settings):
    settings.PORTAL_LOG_ROOTS = [*settings.PORTAL_LOG_ROOTS, str(paths.VAR_DIR)]
    assert "inside the portal's private folder" in log_error(paths.VAR_DIR / "secret_key")


def test_a_link_in_the_log_folder_that_leads_to_the_secret_key_is_refused(log_dir):
    link = log_dir / "innocent.log"
    link.symlink_to(paths.VAR_DIR / "secret_key")
    try:
        message = log_error(link)
    finally:
        link.unlink()
    assert f"{link} is a symbolic link, not a regular file" in message and WHERE in message


def test_a_folder_link_that_leaves_the_root_is_refused(log_dir, tmp_path):
    (log_dir / "elsewhere").symlink_to(tmp_path)
    try:
        message = log_error(log_dir / "elsewhere" / "gw.log")
    finally:
        (log_dir / "elsewhere").unlink()
    assert "outside the log folders" in message and str(tmp_path) in message


def test_a_fifo_in_the_log_folder_is_refused(log_dir):
    fifo = log_dir / "fifo.log"
    os.mkfifo(fifo)
    try:
        message = log_error(fifo)
    finally:
        fifo.unlink()
    assert "is a FIFO, not a regular file" in message


def test_an_existing_file_the_portal_did_not_create_is_not_taken_over(log_dir):
    (log_dir / "access.log").write_text("GET / 200\n")
    message = log_error(log_dir / "access.log")
    assert "already exists and the portal did not create it for this gateway" in message
    assert "Choose a file name that does not exist yet" in message


def test_another_gateways_default_log_is_refused(log_dir):
    message = log_error(log_dir / "gateways" / "Other.log")
    assert "holds each gateway's default log" in message


def test_a_new_file_in_the_log_folder_passes(log_dir):
    assert log_error(log_dir / "pygate.log") == ""


def test_portal_log_roots_adds_a_folder(log_dir, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("PORTAL_LOG_ROOTS", f"{tmp_path}{os.pathsep}/srv/other")
    assert paths.log_roots() == [paths.LOG_DIR, tmp_path.resolve(), Path("/srv/other")]
    assert WHERE in log_error(tmp_path / "gw.log")
    settings.PORTAL_LOG_ROOTS = [str(root) for root in paths.log_roots()]
    assert log_error(tmp_path / "gw.log") == ""
    assert f"{WHERE} {paths.LOG_DIR}, {tmp_path}, /srv/other" in log_error("/etc/gw.log")


def test_an_older_definition_pointing_at_a_secret_shows_no_line_of_it(role_client, log_dir):
    gateway = make_gateway(log_file=str(paths.VAR_DIR / "secret_key"))
    secret = (paths.VAR_DIR / "secret_key").read_text().strip()
    viewer = role_client("viewer")
    for url in (f"/gateways/{gateway.name}/", f"/gateways/{gateway.name}/live/"):
        html = viewer.get(url).content.decode()
        assert secret not in html
        assert "The log is not shown and the gateway will not start" in html
    failure = tasks.preflight(gateway)
    assert failure is not None and failure.code == "log-file-outside"


def test_an_older_definition_pointing_at_a_fifo_does_not_hang_the_page(role_client, log_dir):
    fifo = log_dir / "old.fifo"
    os.mkfifo(fifo)
    gateway = make_gateway(log_file=str(fifo))
    try:
        response = role_client("viewer").get(f"/gateways/{gateway.name}/")
    finally:
        fifo.unlink()
    assert response.status_code == 200
    assert "is a FIFO, not a regular file" in response.content.decode()


# At start time, with a real worker and real keepers --------------------------------


def test_a_log_file_swapped_for_a_link_after_the_save_is_refused_at_start_and_the_victim_kept(
        pygate, operator, log_dir, tmp_path):
    victim = tmp_path / "victim.dat"
    victim.write_bytes(b"precious\n" * 1_300_000)  # 11.7 MB: the keeper rotates logs above 10 MB
    before = victim.stat()
    log_file = log_dir / "swapped.log"
    Gateway.objects.filter(pk=pygate.pk).update(log_file=str(log_file))  # saved while it did not exist
    log_file.symlink_to(victim)
    try:
        gateway = start_and_wait(pygate, operator)
    finally:
        log_file.unlink()
    assert gateway.state == "stopped"
    assert "Start refused" in gateway.last_error and "symbolic link" in gateway.last_error
    assert WHERE in gateway.last_error
    assert server_processes(gateway.port) == []
    after = victim.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_log_file_the_portal_created_is_kept_across_starts_and_not_given_to_another_gateway(
        pygate, operator, log_dir):
    log_file = log_dir / "pygate-own.log"
    Gateway.objects.filter(pk=pygate.pk).update(log_file=str(log_file))
    pygate.refresh_from_db()
    assert start_and_wait(pygate, operator).state == "running"
    assert log_file.exists() and log_file.stat().st_mode & 0o077 == 0
    # Its own definition may keep it (an edit of another field passes)...
    assert log_error(log_file, instance=pygate) == ""
    # ...another definition may not take it over.
    assert "the portal did not create it for this gateway" in log_error(log_file)


def test_the_keeper_is_given_the_log_folders(log_dir):
    from gateways import runtime

    spec = runtime.build_spec(make_gateway())
    assert spec.log_roots == list(settings.PORTAL_LOG_ROOTS)
    assert spec.log_file == str(log_dir / "gateways" / "PyGate.log")


def test_a_relative_log_file_is_refused_with_an_example_that_would_pass(log_dir):
    message = log_error("gw.log")
    assert message == f"Give the log file's full path, e.g. {log_dir / 'pygate.log'}, not “gw.log”."
    assert log_error(log_dir / "pygate.log") == ""


# A component longer than the file system allows (255 bytes) makes os.stat and Path.exists
# raise ENAMETOOLONG instead of answering; a loop of links raises ELOOP.
TOO_LONG = "x" * 300 + ".log"


def test_a_log_file_name_too_long_for_the_file_system_is_refused_with_a_message(log_dir, admin_client_):
    for path in (log_dir / TOO_LONG, log_dir / ("d" * 300) / "gw.log"):
        message = log_error(path)
        assert "too long" in message and "255" in message, message
    headers = {"HX-Request": "true", "HX-Trigger-Name": "log_file"}
    response = admin_client_.post("/gateways/validate/", form_data(log_file=str(log_dir / TOO_LONG)), headers=headers)
    assert response.status_code == 200 and "too long" in response.content.decode()
    response = admin_client_.post("/gateways/new/", form_data(log_file=str(log_dir / TOO_LONG)))
    assert response.status_code == 200 and "too long" in response.content.decode()
    assert not Gateway.objects.exists()


def test_a_log_file_through_a_loop_of_links_is_refused_with_a_message(log_dir):
    loop = log_dir / "loop"
    loop.symlink_to(loop)
    try:
        message = log_error(loop / "gw.log")
        assert message, "a loop of links was accepted"
    finally:
        loop.unlink()


def test_the_command_refuses_a_log_file_name_too_long_without_a_traceback(log_dir):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as error:
        call_command("gateway", "create", "PyGate", "--port", "55001", "--log-file", str(log_dir / TOO_LONG))
    assert "--log-file:" in str(error.value) and "too long" in str(error.value)
    assert not Gateway.objects.exists()
