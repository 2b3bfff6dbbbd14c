"""Two merges at once, in two real processes (manage.py cpf merge) on the test database:
one runs after the other, so the definitions end as one file or the other says, never mixed,
and each merge's history is whole. Run on PostgreSQL too with .ci/postgres.sh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import worker_env
from gateways.models import Gateway
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
COUNT = 150


def merge_file(path: Path, base: int, options: str) -> Path:
    lines = [f"CreateGateway:Name=G{i:03d},AllowNoPassphrase=1,Port={base + i},PythonOptions={options}" for i in range(COUNT)]
    path.write_text("[Actions]\n" + "\n".join(lines) + "\n")
    return path


def run_merges(*files: Path) -> list[subprocess.CompletedProcess]:
    processes = [
        subprocess.Popen([sys.executable, "manage.py", "cpf", "merge", str(f)], cwd=ROOT, env=worker_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for f in files
    ]
    results = []
    for p in processes:
        out, err = p.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


def test_two_merges_at_once_leave_one_files_state_never_a_mix(tmp_path):
    a = merge_file(tmp_path / "a.cpf", 20000, "-O")
    b = merge_file(tmp_path / "b.cpf", 21000, "-u")
    first, second = run_merges(a, b)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    rows = set(Gateway.objects.values_list("port", "python_options"))
    by_a = {(20000 + i, "-O") for i in range(COUNT)}
    by_b = {(21000 + i, "-u") for i in range(COUNT)}
    assert rows in (by_a, by_b), "the definitions mix the two files"
    # One created each, then the later merge changed each: whole histories, none half-written.
    assert AuditEntry.objects.filter(action="created").count() == COUNT
    assert AuditEntry.objects.filter(action="changed").count() == COUNT
    summaries = sorted(r.stdout.strip().splitlines()[-1].split(": ", 1)[1] for r in (first, second))
    assert summaries == [f"0 created, {COUNT} modified, 0 deleted, 0 already as asked.",
                         f"{COUNT} created, 0 modified, 0 deleted, 0 already as asked."]


def test_a_bad_merge_beside_a_good_one_changes_nothing_of_its_own(tmp_path):
    good = merge_file(tmp_path / "good.cpf", 22000, "-O")
    bad = merge_file(tmp_path / "bad.cpf", 23000, "-u")
    bad.write_text(bad.read_text() + "CreateGateway:Name=Broken,AllowNoPassphrase=1,Port=70000\n")
    ok, refused = run_merges(good, bad)
    assert ok.returncode == 0, ok.stderr
    assert refused.returncode == 1 and "line 152, Port: 70000 is out of range" in refused.stderr
    assert set(Gateway.objects.values_list("port", flat=True)) == {22000 + i for i in range(COUNT)}
