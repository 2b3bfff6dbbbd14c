"""``manage.py webapp nginx-config``: the printed config passes ``nginx -t`` and serves real requests."""

from __future__ import annotations

import http.client
import io
import json
import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from portal.process.states import RUNNING
from webapps import adapter
from webapps.tests.front_helpers import free_port, gunicorn, stop, tcp_answers, wait_for
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db


def printed(*args: str) -> str:
    out = io.StringIO()
    call_command("webapp", "nginx-config", *args, stdout=out)
    return out.getvalue()


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_the_printed_config_works_in_an_operators_own_nginx(tmp_path: Path, nginx: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "apps.example.test"]  # the 503 page may link there
    running = make_webapp(app_dir(tmp_path), name="/flask", state=RUNNING)
    make_webapp(app_dir(tmp_path), name="/down", state="fatal", last_error="ImportError: no module named hello")
    sock = adapter.socket_path(running)
    sock.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Behind the operator's TLS terminator on this host, whose X-Forwarded-For and -Proto count.
    (tmp_path / "portal-apps.conf").write_text(printed("--server-name", "apps.example.test", "--listen", str(port),
                                                       "--trusted-proxy", "127.0.0.1"))
    # An operator's nginx.conf: its own http block including the printed file, and its workers
    # run as the portal's account (var/ is private to it: docs/operations.md).
    conf = tmp_path / "nginx.conf"
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    client_body_temp_path {tmp_path}/body;\n"
        f"    proxy_temp_path {tmp_path}/proxy;\n    include {tmp_path}/portal-apps.conf;\n}}\n"
    )
    nginx_argv = [nginx, "-p", str(tmp_path), "-c", str(conf)]
    checked = subprocess.run([*nginx_argv, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    with gunicorn(str(sock), log=tmp_path / "gunicorn.log"):
        server = subprocess.Popen([*nginx_argv, "-g", "daemon off;"], stderr=subprocess.PIPE)
        try:
            wait_for(lambda: tcp_answers(port), what="nginx listening")
            host = {"Host": "apps.example.test", "Cookie": "portal_sessionid=ADMIN; sessionid=app"}
            status, body = get(port, "/flask/x?y=1", host)
            assert status == 200
            seen = json.loads(body)  # the test app describes the request it received
            assert (seen["path"], seen["query"]) == ("/flask/x?y=1", "y=1")
            assert seen["cookies"] == {"sessionid": "app"}  # the portal's session never reaches an app
            assert seen["headers"]["x-forwarded-host"] == "apps.example.test"
            assert seen["headers"]["x-forwarded-for"] == "127.0.0.1" and seen["headers"]["x-forwarded-proto"] == "http"
            seen = json.loads(get(port, "/flask/x", {**host, "X-Forwarded-For": "203.0.113.9, 198.51.100.4",
                                                     "X-Forwarded-Proto": "https"})[1])
            assert seen["headers"]["x-forwarded-for"] == "198.51.100.4" and seen["headers"]["x-forwarded-proto"] == "https"
            status, body = get(port, "/down/", {**host, "Accept": "application/json"})
            assert status == 503
            assert json.loads(body) == {
                "error": "application /down is fatal", "application": "/down", "state": "fatal",
                "reason": "ImportError: no module named hello",
                "portal": "http://apps.example.test:8000/webapps/down/",  # its page, on the portal's port
            }
            # A name the portal does not answer to never goes into the link.
            status, body = get(port, "/down/", {"Host": "evil.example", "Accept": "application/json"})
            assert status == 503 and "portal" not in json.loads(body)
            assert get(port, "/flask", host)[0] == 301
            assert get(port, "/elsewhere/", host)[0] == 404
        finally:
            stop(server)


def test_bad_options_are_refused_saying_what_to_give() -> None:
    with pytest.raises(CommandError, match=re.escape("--server-name 'a;b' is not a host name, e.g. apps.example.com")):
        printed("--server-name", "a;b")
    with pytest.raises(CommandError, match="--listen 'eighty' is not a port or HOST:PORT"):
        printed("--listen", "eighty")
    with pytest.raises(CommandError, match=re.escape("--trusted-proxy: trusted proxy 'lb.example' is not an IP address")):
        printed("--trusted-proxy", "10.0.0.1,lb.example")
