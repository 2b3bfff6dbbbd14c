"""Every page fits a 390 px phone, a 1280 px laptop and a 1920 px screen, in a real Chromium.

Nothing scrolls sideways, the header's links stay inside the dark bar, no table is
wider than its box (no column hidden behind a scroll, the admin's changelists
included), no word of a name, path or message is broken across two lines, no
placeholder is cut by its field, no two controls touch, and a chart spans its card.
A screenshot of each page at each width is kept in test-artifacts/layout/ (ignored
by git) for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest

from conftest import log_in
from gateways import runtime
from gateways.models import Gateway
from portal import tokens
from processes.models import Activity, Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "layout"
WIDTHS = [390, 1280, 1920]
LONG_NAME = "Gateway_for_the_nightly_settlement_batch_of_the_eastern_region_1"
assert len(LONG_NAME) == 64

# What would stick out: the page itself, a header link outside the bar, a table wider than its box.
OVERFLOW = """(checkTables) => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) {
    const wide = [...document.querySelectorAll('body *')]
      .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' right=' + e.getBoundingClientRect().right);
    problems.push(`the page is ${doc.scrollWidth} px wide in a ${window.innerWidth} px window: ${wide.join(', ')}`);
  }
  const bar = document.querySelector('.topbar, #header');
  if (bar) {
    const b = bar.getBoundingClientRect();
    for (const a of bar.querySelectorAll('a, button')) {
      const r = a.getBoundingClientRect();
      if (r.width && (r.left < b.left || r.right > b.right + 0.5 || r.top < b.top || r.bottom > b.bottom + 0.5)) {
        problems.push(`the header link “${a.textContent.trim()}” is outside the dark bar`);
      }
    }
  }
  // Every table, the admin's changelists too: a column behind a scroll inside the table's box is
  // as hidden as one off the page.
  for (const t of document.querySelectorAll('main.page table, #content table')) {
    const box = t.parentElement;
    if (t.offsetWidth && t.offsetWidth > box.clientWidth + 1) {
      problems.push(`table ${t.id || t.className} is ${t.offsetWidth} px in a ${box.clientWidth} px box`);
    }
  }
  return problems;
}"""

# What reads badly: a word broken across two lines, a placeholder cut by its field, two controls
# touching, a chart narrower than its card, a text cut with an ellipsis.
READING = """() => {
  const problems = [];
  const where = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
  // A word (letters and digits; a break at "/", "-", "_" or "." is between words) whose parts lie on
  // different lines. Logs and output (pre) are shown as written and break where their line ends;
  // a "word" of more than 30 characters (a token of test filler, a hash) cannot fit a phone's line.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  const broken = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement || n.parentElement.closest('pre, textarea, script, style, select, datalist, title')) continue;
    for (const m of n.data.matchAll(/[\\p{L}\\p{N}]+/gu)) {
      if (m[0].length < 2 || m[0].length > 30) continue;
      range.setStart(n, m.index);
      range.setEnd(n, m.index + m[0].length);
      const rects = [...range.getClientRects()].filter(r => r.width > 0);
      if (rects.length > 1 && Math.max(...rects.map(r => r.top)) - Math.min(...rects.map(r => r.top)) > 4) {
        broken.push(`“${m[0]}” in ${where(n.parentElement)}`);
      }
    }
  }
  if (broken.length) problems.push(`words broken across lines: ${broken.slice(0, 8).join(', ')}`);
  // A placeholder wider than its field is cut where its hint ends.
  const canvas = document.createElement('canvas').getContext('2d');
  for (const input of document.querySelectorAll('input[placeholder]')) {
    if (!input.offsetWidth) continue;
    const style = getComputedStyle(input);
    canvas.font = style.font;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const text = canvas.measureText(input.placeholder).width;
    if (text > room + 1) problems.push(`the placeholder “${input.placeholder}” needs ${Math.ceil(text)} px in a ${room} px field`);
  }
  // Controls closer than 3 px: a thumb hits the wrong one, and they read as one.
  const controls = [...document.querySelectorAll('main a.button, main button, main input:not([type=hidden]):not([type=checkbox]):not([type=radio]), main select, main textarea, #content input[type=submit], #content input[type=text], #content input[type=search], #content select')]
    .filter(e => e.offsetWidth && !e.closest('dialog:not([open]), details:not([open]) > :not(summary)'))
    .map(e => [e, e.getBoundingClientRect()]);
  for (let i = 0; i < controls.length; i++) {
    for (let j = i + 1; j < controls.length; j++) {
      const [a, r] = controls[i], [b, q] = controls[j];
      if (a.contains(b) || b.contains(a)) continue;
      if (r.left < q.right + 3 && q.left < r.right + 3 && r.top < q.bottom + 3 && q.top < r.bottom + 3) {
        problems.push(`${where(a)} “${(a.textContent || a.placeholder || a.name).trim()}” touches ${where(b)} “${(b.textContent || b.placeholder || b.name).trim()}”`);
      }
    }
  }
  // The buttons of a page's head keep their distance from what follows (a search box, the filters).
  for (const head of document.querySelectorAll('.pagehead')) {
    const next = head.nextElementSibling;
    const buttons = [...head.querySelectorAll('a.button, button')].filter(b => b.offsetWidth);
    if (!next || !next.offsetHeight || !buttons.length) continue;
    const bottom = Math.max(...buttons.map(b => b.getBoundingClientRect().bottom));
    if (bottom > next.getBoundingClientRect().top - 3) problems.push(`the buttons of the page's head touch ${where(next)}`);
  }
  // A chart spans most of its card.
  for (const svg of document.querySelectorAll('figure.chart svg')) {
    const card = svg.closest('.card');
    const style = getComputedStyle(card);
    const room = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    if (svg.getBoundingClientRect().width < 0.9 * room) {
      problems.push(`a chart is ${Math.round(svg.getBoundingClientRect().width)} px wide in a card with ${room} px of room`);
    }
  }
  // A text cut with an ellipsis, by CSS or on the server.
  for (const e of document.querySelectorAll('main *, #content *')) {
    if (getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1) problems.push(`${where(e)} is cut with an ellipsis`);
  }
  for (const e of document.querySelectorAll('.rowerror, .message, td.msg')) {
    if (/\\S…$/.test(e.textContent.trim())) problems.push(`${where(e)} ends cut: “${e.textContent.trim().slice(-40)}”`);
  }
  return problems;
}"""


@pytest.fixture
def portal_with_content(administrator, redis_service):  # type: ignore[no-untyped-def]
    """Gateways with a long name, a run, activity with long messages, a log, a token: every page has content."""
    now = dt.datetime.now(dt.UTC)
    gateway = Gateway.objects.create(
        name="PyGate", port=25001, python_options="-X dev -W error", allow_no_passphrase=True,
        startup={
            "command": "/usr/bin/python3 -X dev -m gateways.server --host 127.0.0.1 --port 25001 "
                       "--log-file /var/lib/portal/log/gateways/PyGate.log",
            "trigger": "ada",
            "first_lines": ["Traceback (most recent call last): File \"/opt/app/server/very/deep/module.py\", "
                            "line 1234, in <module> " + "x" * 180],
            "error": "the server exited before it was ready",
        },
    )
    Gateway.objects.create(name=LONG_NAME, server="gw-settlement-east.example.com", port=25002)
    # A name with hyphens, and an error under its row whose fix comes at its end.
    held = Gateway.objects.create(
        name="HeldGateway-for-payments-eu", port=25013, state="fatal", allow_no_passphrase=True,
        last_error="The server exited before it was ready: port 25013 is used by another process on this host; "
                   "stop that process or give HeldGateway-for-payments-eu another port.",
    )
    run = Run.objects.create(kind="gateway", object_id=gateway.pk, name="PyGate", trigger="ada", host="portal-host-1",
                             started_at=now, stopped_at=now, outcome="exited", exit_code=1)
    for i in range(8):
        Activity.objects.create(
            kind="gateway", object_id=gateway.pk, name="PyGate", at=now - dt.timedelta(minutes=i), from_state="starting",
            to_state="exited", pid=41000 + i, port=25001, exit_code=1, trigger="ada", level="error",
            host="portal-host-1.example.com", run=run,
            message="The server exited before it was ready: ModuleNotFoundError: No module named "
                    "'settlement_batch_eastern_region' (see /var/lib/portal/log/gateways/PyGate.log)",
        )
    log = runtime.log_path(gateway)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"2026-11-30 01:{i % 60:02d}:00 INFO line {i} " + "y" * (i % 3 * 70) + "\n"
                           for i in range(120)))
    for i in range(30):
        Activity.objects.create(
            kind="gateway", object_id=held.pk, name=held.name, at=now - dt.timedelta(seconds=30 + i),
            from_state="starting", to_state="fatal", trigger="cli:root", level="error", host="portal-host-1.example.com",
            message="Start refused: /usr/bin/python3 -X dev -m gateways.server --host 127.0.0.1 --port 25013 "
                    "exited with code 1 (see /var/lib/portal/log/gateways/HeldGateway-for-payments-eu.log)",
        )
        Run.objects.create(kind="gateway", object_id=held.pk, name=held.name, trigger="cli:root",
                           host="portal-host-1.example.com", started_at=now - dt.timedelta(minutes=i + 1),
                           ready_at=now - dt.timedelta(minutes=i + 1), stopped_at=now - dt.timedelta(minutes=i),
                           outcome="exited", exit_code=1)
    # Its history, as the CLI and a merge write it: on its page and in the dashboard's latest changes.
    from portal import audit

    audit.record(user=None, actor="cli:root", action="created", obj=held, before=None,
                 after=audit.snapshot(held, ["name", "port", "server"]))
    audit.record(user=None, actor="cli:root", action="changed", obj=held, before={"python_options": ""},
                 after={"python_options": "-X dev -X importtime -W error::DeprecationWarning -W ignore::ResourceWarning"})
    tokens.create(administrator, "deploy script on the build server")
    _web_applications(now)
    _programs(now)
    return gateway


def _programs(now: dt.datetime) -> None:
    """A program with a long command, variables and a probe, running; one with a long name that failed."""
    from programs.models import Program

    Program.objects.create(
        name="queue-worker", command="/opt/python/3.12/bin/python3 -m settlement_batch.worker --queue "
                                     "eastern-region-nightly-settlement-reports --concurrency 8 --log-level info",
        directory="/srv/applications/settlement-eastern-region/nightly-batch-reporting/current",
        environment={"QUEUE_URL": "redis://queue.internal.example.com:6379/4", "LANG": "C.UTF-8"},
        secret_environment={"API_TOKEN": "secret"}, probe="http",
        probe_target="http://127.0.0.1:8123/health/ready-for-the-nightly-settlement-batch",
        state="running", pid=43000, state_changed_at=now,
        startup={"command": "/opt/python/3.12/bin/python3 -m settlement_batch.worker " + "x" * 150,
                 "trigger": "ada", "time_to_ready": 0.31, "first_lines": ["worker ready " + "y" * 160]})
    Program.objects.create(name="settlement.eastern-region.nightly-batch-exporter", command="/usr/bin/sleep 1000",
                           state="fatal", last_error="exited with code 3 at once (see the log): " + "e" * 150)


LONG_PATH = "/settlement/eastern-region/nightly-batch/reports.v2/api"


def _web_applications(now: dt.datetime) -> None:
    """A web application with every field filled and long values, and one with a long path."""
    from webapps import adapter
    from webapps.models import WebApp

    folder = "/srv/applications/settlement-eastern-region/nightly-batch-reporting/current"
    webapp = WebApp.objects.create(
        name="/flask", directory=folder, module="reporting.wsgi", callable="application",
        python_executable="/opt/python/3.12/bin/python3", engine="granian", workers=4, threads=8, debug=True,
        environment={"APP_DB_PATH": folder + "/var/reporting-database.sqlite3", "APP_MODE": "production"},
        secret_environment={"API_TOKEN": "secret"},
        static_files={"/static": folder + "/static", "/media/uploads/images": folder + "/media"},
        state="running", pid=42000, state_changed_at=now,
        startup={"command": f"/opt/python/3.12/bin/python3 -m granian --interface wsgi --uds {folder}/app.sock "
                            "--uds-permissions 0o660 --workers 4 --working-dir " + folder + " reporting.wsgi:application",
                 "trigger": "ada", "time_to_ready": 0.812,
                 "first_lines": ["[INFO] Starting granian (main PID: 42000) " + "z" * 160]},
    )
    # Neither an interpreter nor a requirements file, and a folder with a requirements.txt: the page
    # names the file it found there. Its start was refused by a failed build: the cause, then pip's
    # whole output with long lines.
    found = Path(tempfile.mkdtemp(prefix="settlement-eastern-region-nightly-batch-reporting-current-"))
    (found / "requirements.txt").write_text("flask\n")
    refused = ("Start refused: the virtualenv could not be built: pip failed (exit code 1): ERROR: No matching "
               "distribution found for nightly_settlement_reporting_toolkit_for_the_eastern_region==1.0")
    WebApp.objects.create(name=LONG_PATH, directory=str(found), module="app", protocol="asgi",
                          python_executable="", last_error="Start refused: " + "w" * 200,
                          startup={"error": refused, "check": "venv-failed", "output": [
                              "Looking in links: /opt/wheels",
                              "ERROR: Could not find a version that satisfies the requirement " + "y" * 200,
                              "ERROR: No matching distribution found for " + "z" * 200]})
    reports = WebApp.objects.create(
        name="/csp/sys/xyz/reports", directory="/srv/csp/sys/xyz", module="reports.wsgi", state="fatal",
        python_executable="/usr/bin/python3",
        last_error="The application did not answer within 30 s: ModuleNotFoundError: No module named 'reports'; "
                   "set the application's directory to the folder that holds the reports package.",
    )
    Run.objects.create(kind="webapp", object_id=reports.pk, name=reports.name, trigger="ada", host="portal-host-1",
                       started_at=now, stopped_at=now, outcome="failed")
    # Two minutes of CPU and memory of a real process (this one), sampled as the watcher samples them,
    # where the watcher keeps them: the live panel's charts.
    import json
    import os

    import psutil

    from portal.health import redis_client
    from processes.watcher import TreeSampler, metrics_key

    sampler = TreeSampler()
    me = psutil.Process()
    client = redis_client(1.0)
    client.delete(metrics_key("webapp", webapp.pk))
    for _ in range(5):
        client.rpush(metrics_key("webapp", webapp.pk), json.dumps(sampler.sample(os.getpid(), me.create_time())))
    for i in range(4):
        Activity.objects.create(kind="webapp", object_id=webapp.pk, name="/flask", at=now - dt.timedelta(minutes=i),
                                from_state="starting", to_state="running", pid=42000 + i, trigger="ada",
                                host="portal-host-1.example.com", message="Ready in 0.81 s " + "v" * 120)
    # Two minutes of the front's figures, as the front writes them, for the detail page's charts.
    from django.conf import settings

    from webapps.front.metrics import Metrics

    metrics = Metrics()
    metrics.started = now.timestamp() - 121
    for second in range(120):
        for i in range(second % 17 + 3):
            metrics.record("/flask", 500 if i % 9 == 8 else 200, 0.002 * (1 + i % 5))
        metrics.tick(metrics.started + second + 1)
    Path(settings.WEBAPPS_FRONT_METRICS_FILE).parent.mkdir(parents=True, exist_ok=True)
    metrics.write(settings.WEBAPPS_FRONT_METRICS_FILE)
    log = adapter.log_path(webapp)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"127.0.0.1 - - [30/Nov/2026:01:{i % 60:02d}:00] \"GET /flask/posts HTTP/1.1\" 200 "
                           + "q" * (i % 3 * 80) + "\n" for i in range(60)))


PAGES = [
    ("dashboard", "/"),
    ("health", "/health/"),
    ("gateways", "/gateways/"),
    ("create", "/gateways/new/"),
    ("detail", "/gateways/PyGate/"),
    ("detail-long-name", f"/gateways/{LONG_NAME}/"),
    ("detail-held", "/gateways/HeldGateway-for-payments-eu/"),
    ("edit", "/gateways/PyGate/edit/"),
    ("edit-long-name", f"/gateways/{LONG_NAME}/edit/"),
    ("delete", "/gateways/PyGate/delete/"),
    ("activity-of-gateway", "/gateways/PyGate/activity/"),
    ("activity", "/activity/"),
    ("profile", "/profile/"),
    ("cpf-merge", "/cpf/merge/"),
    ("admin", "/admin/"),
    ("admin-gateways", "/admin/gateways/gateway/"),
    ("admin-gateway", "/admin/gateways/gateway/1/change/"),
    ("admin-activity", "/admin/gateways/activity/"),
    ("admin-history", "/admin/portal/auditentry/"),
    ("admin-runs", "/admin/processes/run/"),
    ("webapps", "/webapps/"),
    ("webapp-create", "/webapps/-/new/"),
    ("webapp-detail", "/webapps/flask/"),
    ("webapp-detail-long-path", f"/webapps{LONG_PATH}/"),
    ("webapp-edit", "/webapps/flask/-/edit/"),
    ("webapp-delete", f"/webapps{LONG_PATH}/-/delete/"),
    ("webapp-activity", "/webapps/flask/-/activity/"),
    ("programs", "/programs/"),
    ("program-create", "/programs/new/"),
    ("program-detail", "/programs/queue-worker/"),
    ("program-detail-long-name", "/programs/settlement.eastern-region.nightly-batch-exporter/"),
    ("program-edit", "/programs/queue-worker/edit/"),
    ("program-delete", "/programs/queue-worker/delete/"),
]


def check(page, name: str, width: int) -> list[str]:  # type: ignore[no-untyped-def]
    folder = ARTIFACTS / str(width)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    page.screenshot(path=str(folder / f"{name}-top.png"))
    found = page.evaluate(OVERFLOW, width >= 1280) + page.evaluate(READING)
    return [f"{name} at {width} px: {p}" for p in found]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_window(browser, live_server, portal_with_content, width: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from webapps import figures

    # The front's figures written by the fixture stay shown however long the pages take (a page
    # otherwise says the front stopped once its file is 5 s old).
    monkeypatch.setattr(figures, "STALE_SECONDS", 3600.0)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    try:
        page.goto(f"{live_server.url}/login/")
        problems += check(page, "login", width)
        log_in(page, live_server.url, "ada")
        for name, path in PAGES:
            response = page.goto(live_server.url + path)
            assert response.status == 200, f"{path} answered {response.status}"
            # Panels that load after the page (the dashboard's health) are part of its layout.
            if name == "dashboard":
                page.locator("#health ul.health").wait_for()
            page.wait_for_function("() => !document.querySelector('.htmx-request')")
            problems += check(page, name, width)
            if name == "webapp-detail":
                assert page.locator("#figures svg polyline").count() == 4  # requests, 5xx, p50 and p99
        # The delete confirmation as the dialog it opens in.
        page.goto(f"{live_server.url}/gateways/PyGate/")
        page.click(".pagehead >> text=Delete")
        page.locator("dialog#dialog[open]").wait_for()
        problems += check(page, "delete-dialog", width)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


MERGE_FILE = f"""; a merge with every kind of line, long values included
[Actions]
ModifyGateway:Name=PyGate,PythonOptions=-X dev -X importtime -W error::DeprecationWarning -W ignore::ResourceWarning,StopTimeout=30
CreateGateway:Name={LONG_NAME[:-1]}2,AllowNoPassphrase=1,Server=127.0.0.1,Port=25003,RestartPolicy=always
DeleteGateway:Name={LONG_NAME}
DeleteGateway:Name=Gateway_that_was_never_defined_anywhere_at_all_in_this_portal_x
"""


@pytest.mark.parametrize("width", [390, 1920])
def test_the_merge_preview_its_outcome_and_its_problems_fit_the_window(browser, live_server, portal_with_content,
                                                                       width: int) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    try:
        log_in(page, live_server.url, "ada")
        page.goto(f"{live_server.url}/cpf/merge/")
        page.fill("#cpf-text", MERGE_FILE)
        page.click("button[value=preview]")
        page.locator("#cpf-preview").wait_for()
        assert "1 created, 1 modified, 1 deleted, 1 already as asked" in page.inner_text("#cpf-preview")
        problems += check(page, "cpf-preview", width)
        page.click("button[value=apply]")
        page.locator("#cpf-preview >> text=Applied").wait_for()
        problems += check(page, "cpf-applied", width)
        assert Gateway.objects.get(name="PyGate").stop_timeout == 30
        page.fill("#cpf-text", MERGE_FILE.replace("Port=25003", "Port=x" * 40))
        page.click("button[value=preview]")
        page.locator("#cpf-problems").wait_for()
        problems += check(page, "cpf-problems", width)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)
