"""A web application on several hosts: a row per further host that follows the definition, Start
and Stop on every host or one, each host's routes, a silent host shown as down, and the edge's
nginx configuration. Here a second host is a second worker on this machine with a name of its own
(its tasks come from its own queue); portal/tests/test_multihost.py runs separate installations."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from conftest import require_nginx, start_worker, stop_worker, wait_until
from portal import paths
from processes import control
from processes.models import Activity, Host
from webapps import routing
from webapps.forms import WebAppForm
from webapps.models import WebApp
from webapps.tests.webapp_factories import app_dir, form_data, make_webapp


def save(data: dict[str, str], user, instance: WebApp | None = None) -> WebAppForm:  # type: ignore[no-untyped-def]
    from processes import services

    form = WebAppForm(data, instance=instance, check_app=False)
    if form.is_valid():
        services.save_definition(form, user)
    return form


def test_a_definition_on_two_hosts_has_a_row_per_further_host_that_follows_it(db, tmp_path, administrator,
                                                                               settings):
    here = settings.PORTAL_HOST_NAME
    folder = app_dir(tmp_path)
    form = save(form_data(folder, hosts=f"{here},  web2 ,WEB2"), administrator)
    assert form.is_valid(), form.errors
    app = WebApp.objects.get()
    assert app.hosts == f"{here}, web2" and app.host == here
    further = WebApp.groups.get(primary=app)
    assert (further.host, further.name, further.directory, further.module) == ("web2", "/hello", str(folder), "hello")
    assert further.run_key != app.run_key  # its own run directory, socket and keeper
    assert WebApp.objects.count() == 1 and WebApp.groups.count() == 2  # the pages list the definition once

    form = save({**form_data(folder, hosts=f"{here}, web2"), "workers": "3"}, administrator, instance=app)
    assert form.is_valid(), form.errors
    further.refresh_from_db()
    assert further.workers == 3

    # Reordered: no process group moves; one host dropped: its row goes.
    form = save(form_data(folder, hosts=f"web2, {here}, web3"), administrator, instance=WebApp.objects.get())
    assert form.is_valid(), form.errors
    assert sorted(WebApp.groups.values_list("host", flat=True)) == sorted([here, "web2", "web3"])
    assert WebApp.objects.get().host == here
    form = save(form_data(folder, hosts="web3"), administrator, instance=WebApp.objects.get())
    assert form.is_valid(), form.errors
    assert list(WebApp.groups.values_list("host", flat=True)) == ["web3"]


def test_a_bad_host_name_and_dropping_a_host_it_runs_on_are_refused_with_the_fix(db, tmp_path, administrator,
                                                                                  settings):
    folder = app_dir(tmp_path)
    form = save(form_data(folder, hosts="web1, web 2;rm"), administrator)
    assert "2;rm is not a host name" in form.errors["hosts"][0] and "separated by commas" in form.errors["hosts"][0]
    form = save(form_data(folder, hosts="web 2, 10.0.0.5"), administrator)  # web2 mistyped: "web" and "2"
    assert form.errors["hosts"][0].startswith("2 is not a host name")
    assert save(form_data(folder, hosts="web1, web2"), administrator).is_valid()
    app = WebApp.objects.get()
    # What the keeper on web2 reported (here as its row stands): running there.
    WebApp.groups.filter(host="web2").update(state="running", run_host="web2", pid=4242)
    form = save(form_data(folder, hosts="web1"), administrator, instance=app)
    assert form.errors["hosts"] == ["/hello runs on web2: stop it there first (its page's Hosts table has a Stop "
                                    "for each host), then take web2 off its hosts."]
    assert control.delete_blocker(app) == "/hello runs on web2: stop it there first, then delete it."
    # A host no worker has reported from is allowed, and said.
    assert save(form_data(folder, hosts="web1, web2, web9"), administrator, instance=app).is_valid()


def test_each_host_s_routes_list_its_own_process_groups(db, tmp_path, administrator, settings):
    here = settings.PORTAL_HOST_NAME
    assert save(form_data(app_dir(tmp_path), hosts=f"{here}, web2"), administrator).is_valid()
    make_webapp(app_dir(tmp_path), name="/solo")
    mine = {(r["path"], r["socket"]) for r in routing.current_routes()}
    assert {p for p, _ in mine} == {"/hello", "/solo"}
    settings.PORTAL_HOST_NAME = "web2"
    theirs = {r["path"]: r for r in routing.current_routes()}
    assert theirs["/hello"]["socket"] not in {s for _, s in mine}  # web2's group has a socket of its own
    # A definition of no host of its own is the portal's host's: never started, every front can
    # only say that it is stopped; once it has run on the portal's host, the others leave it out.
    assert theirs["/solo"]["state"] == "stopped"
    WebApp.objects.filter(name="/solo").update(run_host=here)
    assert [r["path"] for r in routing.current_routes()] == ["/hello"]


def test_a_gateway_whose_server_is_a_registered_host_s_address_goes_to_that_host(db, settings):
    from gateways.models import Gateway
    from gateways.runtime import host_of

    Host.objects.create(name="gw2", address="127.0.0.3", front="127.0.0.3:8001", seen_at=timezone.now())
    assert host_of(Gateway(name="a", server="127.0.0.3", port=1)) == "gw2"
    assert host_of(Gateway(name="b", server="GW2", port=1)) == "gw2"
    assert host_of(Gateway(name="c", server="127.0.0.1", port=1)) == settings.PORTAL_HOST_NAME


@pytest.mark.worker
def test_start_reaches_every_host_a_second_host_s_worker_runs_its_group_and_a_silent_host_is_down(
        celery_worker, transactional_db, tmp_path, operator, settings):
    """Start on two hosts (this one and web2, a second worker), a host without a worker said at
    once, web2's worker stopped: its group shows as unknown and the host as down, a Start there is
    refused saying so; its worker back: it rejoins with the group still running."""
    here = settings.PORTAL_HOST_NAME
    app = make_webapp(app_dir(tmp_path), python_executable=sys.executable, hosts=f"{here}, web2, ghost")
    from webapps.hosts import sync_groups

    sync_groups(app)
    settings.PORTAL_HOST_BEAT_SECONDS = 0.5  # this process's view: down after 2 s without a report
    web2 = start_worker("web2", paths.VAR_DIR / "worker-web2.log", extra_env={"PORTAL_HOST_BEAT_SECONDS": "0.5"})
    groups = {g.host or here: g for g in app.process_groups()}
    try:
        wait_until(lambda: Host.objects.filter(name="web2").exists(), timeout=60, message="web2 never reported")
        client = Client()
        client.force_login(operator)
        assert client.post("/webapps/hello/-/start/").status_code == 302

        def state(host: str) -> str:
            groups[host].refresh_from_db()
            return groups[host].state if not groups[host].intent else ""

        wait_until(lambda: state(here) == "running" and state("web2") == "running", timeout=60,
                   message="the application did not run on both hosts")
        assert groups["web2"].run_host == "web2" and groups[here].run_host == here
        assert groups["web2"].pid != groups[here].pid
        ghost = groups["ghost"]
        ghost.refresh_from_db()
        assert ghost.state == "stopped" and "host ghost has no worker" in ghost.last_error
        assert Activity.objects.filter(object_id=groups["web2"].pk, to_state="running", host="web2").exists()
        activity = client.get("/webapps/hello/-/activity/").content.decode()
        assert ">web2<" in activity and f">{here}<" in activity  # the definition's Activity: every host's rows
        page = client.get("/webapps/hello/").content.decode()
        assert "running on 2 of 3 hosts; no worker: ghost" in page and 'aria-label="Stop on web2"' in page
        listed = client.get("/webapps/").content.decode()
        assert listed.count('href="/webapps/hello/"') == 1 and "running on 2 of 3 hosts" in listed
        assert "web2" in {h["host"] for h in client.get("/api/webapps/hello/").json()["hosts"]}
        # `start --wait` says which host did not reach its goal (it exits 1).
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match=r"/hello: on ghost it is stopped \(Start refused: host ghost has no "
                                               r"worker"):
            call_command("webapp", "--user", operator.username, "start", "/hello", "--wait", "--timeout", "30")

        stop_worker(web2)  # its keeper goes on running the group: nobody on web2 can say so now
        wait_until(lambda: "running on 1 of 3 hosts; down: web2; no worker: ghost" in client.get("/webapps/hello/").content
                   .decode(), timeout=15, message="the page did not show web2 as down")
        assert groups["web2"].__class__.groups.get(pk=groups["web2"].pk).shown_state == "unknown"
        assert client.post("/webapps/hello/-/stop/", {"host": "web2"}).status_code == 302
        groups["web2"].refresh_from_db()
        assert "host web2 is down: its worker last reported" in groups["web2"].last_error

        web2 = start_worker("web2", paths.VAR_DIR / "worker-web2.log",
                            extra_env={"PORTAL_HOST_BEAT_SECONDS": "0.5"})
        wait_until(lambda: "running on 2 of 3 hosts; no worker: ghost" in client.get("/webapps/hello/").content.decode(),
                   timeout=60, message="web2 did not rejoin")
        app = control.request(app, "stop", operator)
        control.wait_settled(app, "stop", 30)  # each host's group, as `webapp stop --wait` waits
        assert state(here) == "stopped" and state("web2") == "stopped"
    finally:
        stop_worker(web2)


def test_the_edge_sends_each_path_to_the_fronts_of_its_hosts_and_nginx_takes_it(db, tmp_path, administrator,
                                                                                   settings, capsys):
    nginx = require_nginx()
    now = timezone.now()
    Host.objects.create(name="web1", address="127.0.0.2", front="127.0.0.2:8001", seen_at=now)
    Host.objects.create(name="web2", address="127.0.0.3", front="127.0.0.3:8001",
                        seen_at=now - dt.timedelta(hours=1))  # down now: nginx finds that out for itself
    folder = app_dir(tmp_path)
    assert save(form_data(folder, hosts="web1, web2"), administrator).is_valid()
    assert save(form_data(folder, name="/other", hosts="web2, web7"), administrator).is_valid()
    assert save(form_data(folder, name="/lost", hosts="web8"), administrator).is_valid()
    prefix = tmp_path / "edge"
    (prefix / "tmp").mkdir(parents=True)
    call_command("webapp", "nginx-config", "--edge", "--listen", "127.0.0.1:18099", "--complete", str(prefix))
    out, err = capsys.readouterr()
    assert "# /hello: on web1, web2" in out
    hello = out.split("# /hello: on web1, web2")[1].split("}")[0]
    assert "server 127.0.0.2:8001 max_fails=1" in hello and "server 127.0.0.3:8001 max_fails=1" in hello
    assert "location /hello/ { proxy_pass http://webapps_edge_" in out
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in out
    assert "/lost" not in out.split("server {")[1] and "# /other: on web2\n" in out
    assert "note: /other: host web7 has never reported its front" in err
    assert "note: /lost: none of its hosts has a known front: left out" in err
    (tmp_path / "edge.conf").write_text(out)
    as_root = ["-g", "user root;"] if os.geteuid() == 0 else []
    check = subprocess.run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(tmp_path / "edge.conf"), *as_root],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_merge_file_names_the_hosts_and_the_export_gives_them_back(db, tmp_path, administrator):
    from portal.cpf import merge

    folder = app_dir(tmp_path)
    text = (f"[Actions]\nCreateApplication:Name=/multi,WSGIAppLocation={folder},WSGIAppName=hello,"
            "PythonExecutable=/usr/bin/python3,Hosts=web1 web2\n")
    result = merge.merge(text, administrator, apply=True)
    assert result.applied and not result.problems, result.problems
    app = WebApp.objects.get(name="/multi")
    assert app.hosts == "web1, web2" and WebApp.groups.filter(primary=app).get().host == "web2"
    assert ",Hosts=web1 web2" in merge.export()


@pytest.mark.worker
def test_the_page_reads_the_log_of_another_host_through_that_host_s_worker(celery_worker, transactional_db, tmp_path,
                                                                           operator, settings):
    """The log is where the process ran: here a second worker, web2, whose run wrote it; the page
    (this host's) gets its end from web2's worker, and says so when web2 has no worker."""
    from processes.logs import tail_of
    from webapps.adapter import WEBAPPS

    app = make_webapp(app_dir(tmp_path), python_executable=sys.executable, hosts="web2")
    from webapps.hosts import sync_groups

    sync_groups(app)
    log = WEBAPPS.log_path(app)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("first line\nlast line of web2's run\n")
    WebApp.groups.filter(pk=app.pk).update(run_host="web2")
    app.refresh_from_db()
    lines, error, _ = tail_of(WEBAPPS, app)
    assert lines == [] and "The log is on host web2" in error and "host web2 has no worker" in error
    web2 = start_worker("web2", paths.VAR_DIR / "worker-web2.log")
    try:
        wait_until(lambda: Host.objects.filter(name="web2").exists(), timeout=60, message="web2 never reported")
        wait_until(lambda: tail_of(WEBAPPS, app)[0][-1:] == ["last line of web2's run"], timeout=20,
                   message="web2's worker did not send the log")
        assert tail_of(WEBAPPS, app)[2] == f"{log} on web2"  # the path as web2's worker knows it
        client = Client()
        client.force_login(operator)
        assert "last line of web2&#x27;s run" in client.get("/webapps/hello/-/live/").content.decode()
    finally:
        stop_worker(web2)


@pytest.mark.worker
def test_save_asks_each_other_host_s_worker_whether_the_application_s_files_are_there(
        celery_worker, transactional_db, tmp_path, administrator, settings):
    """web2 is a second worker on this machine: what it finds is what this machine has, so the
    folder missing here is missing there; a host without a worker is said, and saving goes on."""
    from processes.hosts import check_paths_on

    here = settings.PORTAL_HOST_NAME
    folder = app_dir(tmp_path)
    web2 = start_worker("web2", paths.VAR_DIR / "worker-web2.log")
    try:
        wait_until(lambda: Host.objects.filter(name="web2").exists(), timeout=60, message="web2 never reported")
        form = WebAppForm(form_data(folder, hosts=f"{here}, web2, web5",
                                    python_executable=sys.executable), check_app=True)
        assert form.is_valid(), form.errors
        warnings = " ".join(form.field_warnings["hosts"])
        assert "Host web5 has no worker" in warnings and "web2 lacks" not in warnings
        # What web2's worker answers for a folder it lacks (the form's own check refuses a folder
        # missing here, and web2 shares this machine's files).
        gone = str(tmp_path / "gone")
        assert check_paths_on(["web2"], [("application directory", gone, "folder")]) == {
            "web2": [f"the application directory {gone} (missing)"]}
    finally:
        stop_worker(web2)


def test_the_pages_link_to_the_edge_when_it_is_configured(db, tmp_path, viewer, settings):
    make_webapp(app_dir(tmp_path))
    client = Client()
    client.force_login(viewer)
    assert 'href="http://testserver:8001/hello/"' in client.get("/webapps/").content.decode()
    settings.PORTAL_APPS_URL = "https://apps.example.com"
    assert 'href="https://apps.example.com/hello/"' in client.get("/webapps/").content.decode()
    assert "https://apps.example.com/hello/" in client.get("/webapps/hello/").content.decode()



def test_wrong_or_hostile_values_get_a_message(db, tmp_path, administrator, operator, capsys):
    from django.core.management.base import CommandError

    folder = app_dir(tmp_path)
    many = ", ".join(f"web{i}" for i in range(40))
    assert save(form_data(folder, hosts=many), administrator).errors["hosts"] == [
        "40 hosts are named; an application runs on at most 32: name fewer."]
    assert save(form_data(folder, hosts="web1, web2"), administrator).is_valid()
    client = Client()
    client.force_login(operator)
    response = client.post("/webapps/hello/-/start/", {"host": "elsewhere"}, follow=True)
    assert response.status_code == 200
    assert "/hello does not run on host elsewhere: add it to its hosts first, or pick one of web1, web2." in (
        response.content.decode())
    for args, message in ((["--complete", "/tmp/a b;"], "the --complete folder '/tmp/a b;' holds a space"),
                          (["--listen", "x;y"], "--listen 'x;y' is not a port or HOST:PORT"),
                          (["--server-name", "a;b"], "--server-name 'a;b' is not a host name")):
        with pytest.raises(CommandError, match=message.replace("(", r"\(")):
            call_command("webapp", "nginx-config", "--edge", *args)
