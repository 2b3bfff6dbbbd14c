"""A failed virtualenv build says its cause once (pip's ERROR: lines), and the detail page keeps pip's
whole output. Real builds: pip, with a requirement no index has (offline, PIP_NO_INDEX, where the
engine is not needed; else pip's configured index, which the engine's build needs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from processes import tasks as process_tasks
from processes.models import Activity
from webapps import adapter
from webapps.runtime.venvs import VenvError, ensure_venv, pip_errors
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db
MISSING = "nothere-at-all==1.0"
CAUSE = f"ERROR: No matching distribution found for {MISSING}"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip's own setting: it reaches the build (PIP_ENV_PREFIXES)


def test_pips_error_lines_are_the_message_once_without_the_rest(tmp_path: Path, offline: None) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{MISSING}\n")
    with pytest.raises(VenvError) as caught:
        ensure_venv(tmp_path / "v", requirements, None)
    message = str(caught.value)
    assert message.count(CAUSE) == 1, message
    assert message.startswith("pip failed (exit code 1): ERROR: Could not find a version that satisfies")
    assert message.endswith("Fix the requirements file and save it again")
    assert " | " not in message and "\n" not in message and "WARNING" not in message
    assert CAUSE in caught.value.lines and len(caught.value.lines) > len(pip_errors(caught.value.lines))


def test_pip_errors_keeps_each_error_line_once_in_order() -> None:
    lines = ["Looking in links: /opt/wheels", "WARNING: Retrying", "ERROR: one", "  progress", "ERROR: two",
             "ERROR: one"]
    assert pip_errors(lines) == ["ERROR: one", "ERROR: two"]


def test_the_refused_start_shows_the_cause_once_and_pips_output_on_the_detail_page(
        tmp_path: Path, admin_client_) -> None:
    folder = app_dir(tmp_path)
    (folder / "requirements.txt").write_text(f"{MISSING}\n")
    webapp = make_webapp(folder, python_executable="", requirements_file=str(folder / "requirements.txt"))
    account = adapter.WebAppAdapter().prepare_account(webapp)  # as the build task does: its user, its folder
    failure = adapter.ensure_virtualenv(webapp, account)
    assert failure is not None and failure.code == "venv-failed"
    assert failure.message.count(CAUSE) == 1 and " | " not in failure.message
    assert "pip's whole output is under “Last start” on /hello's page" in failure.message
    assert failure.output and CAUSE in failure.output
    process_tasks.refuse_start(webapp, "system", failure, None)
    activity = Activity.objects.filter(object_id=webapp.pk, level="error").values_list("message", flat=True)
    assert all(m.count(CAUSE) == 1 for m in activity), list(activity)

    page = admin_client_.get(webapp.get_absolute_url()).content.decode()
    error = re.search(r'<div class="message error" role="alert">(.*?)</div>', page, re.S)
    assert error is not None and error.group(1).count("No matching distribution found") == 1
    output = re.search(r'<details class="output-log" open>.*?<pre class="output">(.*?)</pre>', page, re.S)
    assert output is not None, "pip's output is on the page"
    assert output.group(1).count("\n") == len(failure.output), "every line of pip's output"
    assert "No matching distribution found" in output.group(1)
