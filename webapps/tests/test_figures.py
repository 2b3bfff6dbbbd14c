"""Live figures on an application's page, measured by a real front."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from portal.process.states import RUNNING
from processes.charts import HEIGHT
from webapps import adapter, figures
from webapps.tests.front_helpers import FRONTS, RunningFront, gunicorn, wait_for
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db


def polyline_points(html: str, label: str) -> list[tuple[float, float]]:
    """The points of the chart whose aria-label starts with ``label``."""
    match = re.search(rf'aria-label="{label}[^"]*"><polyline [^>]*points="([^"]*)"', html)
    assert match, f"no chart {label!r} in:\n{html[:3000]}"
    return [tuple(map(float, p.split(","))) for p in match.group(1).split()]  # type: ignore[misc]


@pytest.mark.parametrize("kind", FRONTS)
def test_the_page_draws_requests_errors_and_latency_the_front_measured(
    kind: str, tmp_path: Path, settings: Any, admin_client_: Any
) -> None:
    app = make_webapp(app_dir(tmp_path), name="/flask", state=RUNNING)
    sock = adapter.socket_path(app)
    sock.parent.mkdir(parents=True, exist_ok=True)
    front = RunningFront(kind, tmp_path / "front")
    (tmp_path / "front").mkdir()
    settings.WEBAPPS_FRONT_METRICS_FILE = front.metrics_file
    with gunicorn(str(sock), log=tmp_path / "gunicorn.log"):
        front.start([{"path": "/flask", "socket": str(sock)}])
        try:
            def counted(requests: int) -> bool:
                totals = figures.front_history("/flask")[1] or {}
                return totals.get("requests") == requests

            # Three points of the front's history (it writes one about once a second) with traffic:
            # 20 answers and 5 errors each; the next burst waits until the front has written this one's.
            for burst in range(1, 4):
                for _ in range(20):
                    assert front.get("/flask/x")[0] == 200
                for _ in range(5):
                    assert front.get("/flask/x?fail=1")[0] == 500
                wait_for(lambda n=25 * burst: counted(n), what=f"the front's figures of burst {burst} written")
            history, totals, why = figures.front_history("/flask")
            page = admin_client_.get(reverse("webapps:detail", args=["flask"]))
            partial = admin_client_.get(reverse("webapps:figures", args=["flask"]))
        finally:
            front.stop()
    assert page.status_code == 200 and partial.status_code == 200
    html = partial.content.decode()
    assert 'id="figures"' in page.content.decode()  # the detail page includes the partial
    assert 'hx-get="/webapps/flask/-/figures/"' in html and "every 2s" in html
    assert why == "" and totals["requests"] == 75 and totals["errors_5xx"] == 15
    assert "75 requests, 15 5xx answers" in html
    rps = polyline_points(html, "Requests per second")
    errors = polyline_points(html, "5xx answers per second")
    assert len(rps) >= 3
    # The seconds with traffic stand above the chart's floor, the zero line (y grows downwards).
    floor = HEIGHT - 2
    assert min(y for _, y in rps) < floor - 10
    assert min(y for _, y in errors) < floor - 10
    assert len([h for h in history if h["e5xx"] > 0]) >= 2  # errors in two seconds or more
    assert polyline_points(html, "Latency p50 and p99")
    assert re.search(r"<dt>Latency</dt><dd>p50 ≤ [\d.]+ ms", html)


def test_without_a_front_the_page_says_so(tmp_path: Path, settings: Any, admin_client_: Any) -> None:
    make_webapp(app_dir(tmp_path), name="/flask")
    settings.WEBAPPS_FRONT_METRICS_FILE = tmp_path / "none.json"
    html = admin_client_.get(reverse("webapps:figures", args=["flask"])).content.decode()
    assert "The front has not written any figures yet" in html
    (tmp_path / "none.json").write_text('{"version": 1, "time": 1000.0, "apps": {}, "history": {}}')
    html = admin_client_.get(reverse("webapps:figures", args=["flask"])).content.decode()
    assert "The front is not running" in html


def test_the_figures_need_a_role(tmp_path: Path, role_client: Any) -> None:
    make_webapp(app_dir(tmp_path), name="/flask")
    url = reverse("webapps:figures", args=["flask"])
    assert role_client("anonymous").get(url).status_code == 302
    assert role_client("viewer").get(url).status_code == 200
