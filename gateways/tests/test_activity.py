"""The activity pages: per gateway and across all gateways, filters, keyset pages, CSV, htmx rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import pytest
from django.test import Client

from conftest import ROLES
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from processes.models import Activity, Run

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 5, 31, 12, 0, tzinfo=dt.UTC)


def add_activity(gateway: Gateway | None, n: int = 1, *, start: dt.datetime = T0, **fields: Any) -> list[Activity]:
    """``n`` rows one second apart from ``start``, message "event <i>"."""
    rows = []
    for i in range(n):
        values: dict[str, Any] = {
            "kind": "gateway",
            "object_id": gateway.pk if gateway else None,
            "name": gateway.name if gateway else "Gone",
            "at": start + dt.timedelta(seconds=i),
            "from_state": "starting",
            "to_state": "running",
            "pid": 4242,
            "port": gateway.port if gateway else 55009,
            "trigger": "ada",
            "host": "alpha",
            "message": f"event {i}",
        }
        values.update(fields)
        rows.append(Activity(**values))
    return Activity.objects.bulk_create(rows)


def shown_events(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<td[^>]*>event (\d+)</td>", html)]


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    return match[1].replace("&amp;", "&") if match else None


# Who may read ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["/activity/", "/gateways/PyGate/activity/"])
def test_anonymous_is_sent_to_the_login_page(client: Client, url: str) -> None:
    make_gateway()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next={url}")


@pytest.mark.parametrize("role", ROLES[1:])
@pytest.mark.parametrize("url", ["/activity/", "/gateways/PyGate/activity/"])
def test_every_role_reads_the_activity(role_client, role: str, url: str) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), message="Start requested")
    response = role_client(role).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Start requested" in html
    assert '<span class="state state-running">Running</span>' in html


@pytest.mark.parametrize("url", ["/activity/", "/gateways/PyGate/activity/", "/activity/?format=csv"])
def test_a_user_without_a_role_is_refused(client: Client, make_user, url: str) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway())
    client.force_login(make_user("nobody", None))
    response = client.get(url)
    assert response.status_code == 403
    assert b"event 0" not in response.content


def test_an_unknown_gateway_has_no_activity_page(role_client) -> None:  # type: ignore[no-untyped-def]
    assert role_client("viewer").get("/gateways/Nope/activity/").status_code == 404


def test_the_navigation_links_to_the_activity_page(role_client) -> None:  # type: ignore[no-untyped-def]
    html = role_client("viewer").get("/gateways/").content.decode()
    assert 'href="/activity/"' in html


@pytest.mark.parametrize(("url", "current"), [("/activity/", "Activity"), ("/gateways/PyGate/activity/", "Gateways")])
def test_one_menu_item_is_highlighted(role_client, url: str, current: str) -> None:  # type: ignore[no-untyped-def]
    make_gateway()
    nav = role_client("viewer").get(url).content.decode().split('<nav class="mainnav">')[1].split("</nav>")[0]
    assert re.findall(r'aria-current="page">(\w+)</a>', nav) == [current]


def test_the_until_filter_says_what_it_means(role_client) -> None:  # type: ignore[no-untyped-def]
    html = role_client("viewer").get("/activity/").content.decode()
    assert "Not included." not in html
    assert "Shows activity before this time; the time itself is not included." in html


# What a row shows -------------------------------------------------------------


def test_a_row_shows_every_column(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(
        gateway, from_state="running", to_state="exited", exit_code=3, expected=False, level="error",
        trigger="keeper", message="exited unexpectedly",
    )
    html = role_client("viewer").get("/activity/").content.decode()
    row = html[html.index('<tr class="level-error">'):]
    row = row[: row.index("</tr>")]
    for text in ("2024-05-31 12:00:00", "/gateways/PyGate/activity/", "state-running", "state-exited", "4242",
                 "55001", "exit 3", ">no</td>", "keeper", "Error", "alpha", "exited unexpectedly"):
        assert text in row, text


def test_a_signal_is_shown_instead_of_the_exit_code(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), to_state="exited", signal="SIGKILL", exit_code=-9)
    html = role_client("viewer").get("/activity/").content.decode()
    assert "SIGKILL" in html and "exit -9" not in html


def test_a_deleted_gateway_keeps_its_name_without_a_link(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(None)
    html = role_client("viewer").get("/activity/").content.decode()
    assert "Gone <span class=\"muted\">(deleted)</span>" in html
    assert "/gateways/Gone/activity/" not in html


def test_the_gateway_page_shows_only_its_own_activity(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), message="mine")
    add_activity(make_gateway(name="Other", port=55002), message="theirs")
    html = role_client("viewer").get("/gateways/PyGate/activity/").content.decode()
    assert "mine" in html and "theirs" not in html
    # The gateway column is left out where there is only one gateway.
    assert '<th scope="col">Gateway</th>' not in html


def test_the_global_page_shows_every_gateway(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), message="mine")
    add_activity(make_gateway(name="Other", port=55002), message="theirs", start=T0 + dt.timedelta(hours=1))
    html = role_client("viewer").get("/activity/").content.decode()
    assert html.index("theirs") < html.index("mine"), "newest first"
    # The column names every registered kind ("Gateway or web application").
    from processes.adapters import kinds_text

    assert f'<th scope="col">{kinds_text("or").capitalize()}</th>' in html


def test_an_empty_table_says_so(role_client) -> None:  # type: ignore[no-untyped-def]
    html = role_client("viewer").get("/activity/").content.decode()
    assert "No activity recorded yet." in html


# Runs -------------------------------------------------------------------------


def test_the_gateway_page_shows_its_latest_runs(role_client, administrator) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    for i in range(25):
        Run.objects.create(
            kind="gateway", object_id=gateway.pk, name=gateway.name, trigger=f"api:ada{i}", host="alpha", pid=1000 + i,
            started_at=T0 + dt.timedelta(minutes=i), ready_at=T0 + dt.timedelta(minutes=i, seconds=1),
            stopped_at=T0 + dt.timedelta(minutes=i, seconds=90), outcome=Run.Outcome.EXITED, exit_code=2,
            requested_by=administrator,
        )
    Run.objects.create(kind="gateway", object_id=gateway.pk, name=gateway.name, trigger="ada", host="alpha",
                       started_at=T0 + dt.timedelta(hours=2), outcome=Run.Outcome.RUNNING)
    html = role_client("viewer").get("/gateways/PyGate/activity/").content.decode()
    runs = html[html.index('id="runs"'):]
    assert runs.count("<tr>") == 1 + 20, "a header and the latest 20 runs"
    assert "api:ada24" in runs and "api:ada5" not in runs
    assert "90.0 s" in runs and "exit 2" in runs and "Exited" in runs and "Running" in runs
    assert runs.index("Running") < runs.index("api:ada24"), "newest first"


def test_a_gateway_never_started_says_so(role_client) -> None:  # type: ignore[no-untyped-def]
    make_gateway()
    html = role_client("viewer").get("/gateways/PyGate/activity/").content.decode()
    assert "has not been started yet" in html


# Filters ------------------------------------------------------------------------


def test_it_filters_by_gateway_on_the_global_page(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), message="mine")
    add_activity(make_gateway(name="Other", port=55002), message="theirs")
    html = role_client("viewer").get("/activity/?gateway=other").content.decode()
    assert "theirs" in html and "mine" not in html


def test_it_finds_a_deleted_gateways_rows_by_name(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(None, message="from the past")
    add_activity(make_gateway(), message="mine")
    html = role_client("viewer").get("/activity/?gateway=Gone").content.decode()
    assert "from the past" in html and "mine" not in html


def test_a_user_name_also_finds_that_users_api_and_cli_requests(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, trigger="ada", message="by page")
    add_activity(gateway, trigger="api:ada", message="by api")
    add_activity(gateway, trigger="cli:ada", message="by cli")
    add_activity(gateway, trigger="otto", message="by otto")
    add_activity(gateway, trigger="auto-restart", message="by keeper policy")
    client = role_client("viewer")
    html = client.get("/activity/?trigger=ada").content.decode()
    assert all(m in html for m in ("by page", "by api", "by cli"))
    assert "by otto" not in html and "by keeper policy" not in html
    html = client.get("/activity/?trigger=api:ada").content.decode()
    assert "by api" in html and "by page" not in html
    html = client.get("/activity/?trigger=auto-restart").content.decode()
    assert "by keeper policy" in html and "by page" not in html


def test_it_filters_by_level(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, level="info", message="fine")
    add_activity(gateway, level="warning", message="hmm")
    add_activity(gateway, level="error", message="broken")
    html = role_client("viewer").get("/gateways/PyGate/activity/?level=error").content.decode()
    assert "broken" in html and "fine" not in html and "hmm" not in html


def test_it_filters_by_time_from_included_until_excluded(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), 5, start=T0)  # 12:00:00 .. 12:00:04
    add_activity(Gateway.objects.get(), 1, start=T0 + dt.timedelta(minutes=1), message="event later")
    add_activity(Gateway.objects.get(), 1, start=T0 + dt.timedelta(minutes=2), message="event last")
    html = role_client("viewer").get("/activity/?since=2024-05-31T12:01&until=2024-05-31T12:02").content.decode()
    assert "event later" in html
    assert "event last" not in html and "event 0" not in html


def test_no_match_says_the_filters_found_nothing(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway())
    html = role_client("viewer").get("/activity/?trigger=nobody").content.decode()
    assert "No activity matches these filters." in html


def test_the_form_keeps_what_was_typed(role_client) -> None:  # type: ignore[no-untyped-def]
    make_gateway()
    html = role_client("viewer").get("/activity/?trigger=otto&level=warning&since=2024-05-31T12:01").content.decode()
    assert 'name="trigger" id="id_trigger" value="otto"' in html
    assert '<option value="warning" selected>' in html
    assert 'value="2024-05-31T12:01"' in html


# Bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "“From” is not a date and time: write it as 2024-05-31T14:30."),
        ("until=2024-13-45T99:00", "“Until” is not a date and time"),
        ("level=panic", "Unknown level panic: choose Info, Warning or Error"),
        ("since=2024-05-31T12:00&until=2024-05-30T12:00", "“From” is not before “Until”: swap them"),
    ],
)
def test_bad_filters_get_a_message_not_an_error_page(role_client, query: str, message: str) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway())
    response = role_client("viewer").get(f"/activity/?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "Fix the filters above to see activity." in html
    assert "event 0" not in html, "rows must not be shown as if the filter had worked"


def test_a_bad_filter_refuses_the_csv_with_the_reason(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway())
    response = role_client("viewer").get("/activity/?format=csv&level=panic")
    assert response.status_code == 400
    assert "Unknown level panic" in response.content.decode()


@pytest.mark.parametrize("cursor", ["before=garbage", "after=1_", "before=99999999999999999999_1"])
def test_a_damaged_page_link_shows_the_newest_page(role_client, cursor: str) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), 3)
    response = role_client("viewer").get(f"/activity/?{cursor}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "The page link is damaged" in html
    assert shown_events(html) == [2, 1, 0]


# Keyset pages -------------------------------------------------------------------------


def test_it_pages_older_and_newer_by_time_and_id(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, 120)
    # Rows written later with the same time: the id breaks the tie, so none is skipped or repeated.
    add_activity(gateway, 3, at=T0 + dt.timedelta(seconds=60), message="event 60")
    client = role_client("viewer")
    first = client.get("/activity/").content.decode()
    assert 'hx-trigger="every 5s" data-poll="visible"' in first
    assert link(first, "prev") is None
    seen = shown_events(first)
    assert len(seen) == 50 and seen[0] == 119

    second = client.get("/activity/" + link(first, "next")).content.decode()
    third = client.get("/activity/" + link(second, "next")).content.decode()
    assert link(third, "next") is None, "the oldest page has no older link"
    everything = seen + shown_events(second) + shown_events(third)
    assert len(everything) == 123
    assert sorted(everything, reverse=True) == everything
    assert everything.count(60) == 4
    assert "hx-trigger" not in second, "an older page must not refresh itself"

    back = client.get("/activity/" + link(third, "prev")).content.decode()
    assert shown_events(back) == shown_events(second)
    newest = client.get("/activity/" + link(back, "prev")).content.decode()
    assert shown_events(newest) == seen
    assert "hx-trigger" in newest, "newer than everything is the first page again"


def test_the_page_links_keep_the_filters(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, 60, level="error")
    add_activity(gateway, 60, level="info", start=T0 + dt.timedelta(minutes=5), message="noise")
    client = role_client("viewer")
    first = client.get("/gateways/PyGate/activity/?level=error").content.decode()
    older = link(first, "next")
    assert older is not None and "level=error" in older
    second = client.get("/gateways/PyGate/activity/" + older).content.decode()
    assert shown_events(second) == list(range(9, -1, -1))
    assert "noise" not in second


def test_a_page_reads_a_fixed_number_of_queries_whatever_the_rows(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    client = role_client("viewer")
    client.get("/activity/")  # sessions and permissions warm up the same way every time
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get("/activity/")
    add_activity(gateway, 300)
    with CaptureQueriesContext(connection) as many:
        client.get("/activity/")
    assert len(many) == len(few)
    assert not any("COUNT(" in q["sql"].upper() for q in many.captured_queries)
    assert not any("OFFSET" in q["sql"].upper() for q in many.captured_queries)


# htmx ---------------------------------------------------------------------------------


def test_the_htmx_refresh_returns_only_the_rows(role_client) -> None:  # type: ignore[no-untyped-def]
    add_activity(make_gateway(), 2)
    response = role_client("viewer").get("/activity/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert shown_events(html) == [1, 0]
    assert "<table" not in html and "<form" not in html and "<html" not in html


def test_the_htmx_refresh_moves_the_older_link_past_the_new_rows(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, 60)
    client = role_client("viewer")
    before = link(client.get("/activity/").content.decode(), "next")
    add_activity(gateway, 5, start=T0 + dt.timedelta(minutes=5), message="event new")
    html = client.get("/activity/", headers={"HX-Request": "true"}).content.decode()
    assert '<nav class="pager actions" id="activity-pager" aria-label="Pages" hx-swap-oob="true">' in html
    after = link(html, "next")
    assert after and after != before
    older = client.get("/activity/" + after).content.decode()
    assert shown_events(older)[0] == 14, "the rows pushed off the first page are on the next one"


def test_the_htmx_refresh_keeps_the_filters(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, level="error", message="broken")
    add_activity(gateway, message="fine")
    client = role_client("viewer")
    page = client.get("/activity/?level=error").content.decode()
    poll = re.search(r'<tbody id="activity-rows" hx-get="([^"]+)"', page)[1].replace("&amp;", "&")  # type: ignore[index]
    html = client.get("/activity/" + poll, headers={"HX-Request": "true"}).content.decode()
    assert "broken" in html and "fine" not in html


# CSV ------------------------------------------------------------------------------------


def test_the_csv_holds_the_filtered_rows_in_as_row_columns(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, 60, level="error", expected=False, exit_code=1, message="event, with \"quotes\"")
    add_activity(gateway, 1, level="info", message="fine")
    response = role_client("viewer").get("/gateways/PyGate/activity/?level=error&format=csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="activity-PyGate-error-\d{4}-\d\d-\d\d-\d{6}\.csv"',
                        response["Content-Disposition"])
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 60, "every filtered row, not one page"
    newest = Activity.objects.filter(level="error").order_by("-at", "-id").first()
    assert list(rows[0]) == list(newest.as_row())
    assert rows[0] == {k: "" if v is None else str(v) for k, v in newest.as_row().items()}
    assert rows[0]["message"] == 'event, with "quotes"'


def test_the_csv_file_name_says_the_filters_and_the_columns_say_kind_and_name(role_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from webapps.tests.webapp_factories import make_webapp

    gateway = make_gateway()
    webapp = make_webapp(tmp_path, name="/flask")
    add_activity(gateway, 2, level="error")
    add_activity(None, 1, kind="webapp", object_id=webapp.pk, name="/flask", level="error", port=None)
    viewer = role_client("viewer")
    response = viewer.get("/activity/?gateway=PyGate&level=error&trigger=api:ada&format=csv")
    assert re.fullmatch(r'attachment; filename="activity-PyGate-error-api_ada-\d{4}-\d\d-\d\d-\d{6}\.csv"',
                        response["Content-Disposition"])
    response = viewer.get("/activity/?gateway=/flask&since=2024-05-31T11:00&until=2024-06-01T00:00&format=csv")
    assert re.fullmatch(r'attachment; filename="activity-flask-from-20240531T\d{4}-until-20240601T\d{4}-'
                        r'\d{4}-\d\d-\d\d-\d{6}\.csv"', response["Content-Disposition"])
    response = viewer.get("/activity/?level=error&format=csv")
    assert re.fullmatch(r'attachment; filename="activity-all-error-[0-9-]+\.csv"', response["Content-Disposition"])
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[0].startswith("time,kind,name,from,to,")
    assert {(row["kind"], row["name"]) for row in csv.DictReader(io.StringIO(text))} == {
        ("gateway", "PyGate"), ("web application", "/flask")}


def test_the_download_link_keeps_the_filters(role_client) -> None:  # type: ignore[no-untyped-def]
    make_gateway()
    html = role_client("viewer").get("/activity/?level=warning&trigger=otto").content.decode()
    href = re.search(r'id="download-csv" href="\?([^"]+)"', html)[1].replace("&amp;", "&")  # type: ignore[index]
    assert set(href.split("&")) == {"level=warning", "trigger=otto", "format=csv"}


def test_the_csv_keeps_a_formula_looking_message_as_text(role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    add_activity(gateway, 1, message='=HYPERLINK("http://example.invalid")')
    response = role_client("viewer").get("/activity/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["message"] == '\'=HYPERLINK("http://example.invalid")'
