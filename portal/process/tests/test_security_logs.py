"""The keeper and the log tail touch only regular files of their own: no link, FIFO, device or foreign file.

Real files, symbolic links, hard links and FIFOs; real keepers.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import wait_until
from portal.process import keeper
from portal.process.logtail import CREATED_RECORD, NotARegularFile, follow, rotate_copytruncate, tail
from portal.process.spec import Spec

VICTIM_TEXT = "root:x:0:0:root:/root:/bin/bash\n"


def spec_logging_to(log_file: Path, roots: list[str] | None = None) -> Spec:
    return Spec(name="demo", argv=[sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"],
                log_file=str(log_file), log_roots=roots, restart_policy="never", quick_secs=0.0,
                stop_timeout=2.0, log_max_bytes=1024 * 1024)


def refused(run_dir: Path) -> str:
    """Launch, and the error the keeper gave (it must not run)."""
    status = keeper.wait_for(run_dir, {"exited", "fatal", "running"}, timeout=10)
    assert status["state"] != "running", status
    assert status["pid"] is None
    return str(status.get("error") or "")


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A big file that is not a log: it must keep every byte."""
    path = tmp_path / "victim" / "passwd"
    path.parent.mkdir()
    path.write_text(VICTIM_TEXT * 40_000)  # 1.3 MB, above the spec's rotation size
    return path


def test_a_log_file_that_is_a_link_to_another_file_is_refused_and_the_file_untouched(tmp_path, run_dir, victim):
    before = victim.read_bytes()
    link = tmp_path / "logs" / "gw.log"
    link.parent.mkdir()
    link.symlink_to(victim)
    keeper.launch(spec_logging_to(link), run_dir)
    assert "is a symbolic link, not a regular file" in refused(run_dir)
    assert victim.read_bytes() == before
    assert not Path(f"{victim}.1").exists() and not Path(f"{link}.1").exists()


def test_a_hard_link_to_another_file_is_refused(tmp_path, run_dir, victim):
    before = victim.read_bytes()
    link = tmp_path / "gw.log"
    os.link(victim, link)
    keeper.launch(spec_logging_to(link), run_dir)
    assert "has 2 hard links" in refused(run_dir)
    assert victim.read_bytes() == before


def test_a_fifo_as_log_file_is_refused_without_hanging(tmp_path, run_dir):
    fifo = tmp_path / "gw.log"
    os.mkfifo(fifo)
    started = time.monotonic()
    keeper.launch(spec_logging_to(fifo), run_dir)
    assert "is a FIFO, not a regular file" in refused(run_dir)
    assert time.monotonic() - started < 8


def test_a_log_file_whose_folder_leads_out_of_the_roots_is_refused_and_not_left_behind(tmp_path, run_dir):
    root = tmp_path / "logs"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "sub").symlink_to(elsewhere)
    keeper.launch(spec_logging_to(root / "sub" / "gw.log", roots=[str(root)]), run_dir)
    error = refused(run_dir)
    assert f"is in fact {elsewhere / 'gw.log'}, outside the log folders ({root})" in error
    assert not (elsewhere / "gw.log").exists()


def test_a_log_file_the_keeper_creates_is_recorded_as_its_own(tmp_path, run_dir):
    root = tmp_path / "logs"
    root.mkdir()
    log_file = root / "gw.log"
    keeper.launch(spec_logging_to(log_file, roots=[str(root)]), run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    # Running means spawned (this spec has no probe): the interpreter prints a moment later.
    wait_until(lambda: "started" in log_file.read_text(), timeout=15, message="the child's output is not in its log")
    assert keeper.request_stop(run_dir, timeout=10)
    record = json.loads((run_dir / CREATED_RECORD).read_text())
    st = log_file.stat()
    assert record == {str(log_file): [st.st_dev, st.st_ino]}


def tail_in_thread(path: Path) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            result["lines"] = tail(path, 10)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    return thread, result


def test_the_tail_of_a_fifo_answers_at_once_instead_of_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "gw.log"
    os.mkfifo(fifo)
    thread, result = tail_in_thread(fifo)
    assert not thread.is_alive(), "tail() blocked on a FIFO"
    assert isinstance(result.get("error"), NotARegularFile)
    assert "is a FIFO, not a regular file" in str(result["error"])


def test_the_tail_does_not_follow_a_link(tmp_path, victim):
    link = tmp_path / "gw.log"
    link.symlink_to(victim)
    with pytest.raises(NotARegularFile, match="is a symbolic link"):
        tail(link)
    with pytest.raises(NotARegularFile, match="is a symbolic link"):
        follow(link, None)


def test_the_tail_reads_a_bounded_amount(tmp_path):
    path = tmp_path / "gw.log"
    with open(path, "w") as f:
        f.write("x" * (8 * 1024 * 1024) + "\nlast line\n")
    started = time.monotonic()
    assert tail(path, 10) == ["last line"]
    assert time.monotonic() - started < 1


def test_rotation_never_cuts_the_file_behind_a_link(tmp_path, victim):
    before = victim.read_bytes()
    link = tmp_path / "gw.log"
    link.symlink_to(victim)
    with pytest.raises(NotARegularFile):
        rotate_copytruncate(link, max_bytes=100, backups=1)
    assert victim.read_bytes() == before


def test_a_log_file_swapped_for_a_fifo_while_running_does_not_block_the_keeper(tmp_path, run_dir):
    log_file = tmp_path / "gw.log"
    keeper.launch(spec_logging_to(log_file), run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    log_file.rename(tmp_path / "gw.log.moved")
    os.mkfifo(log_file)
    # The keeper's housekeeping (first lines, then rotation) has met the FIFO and come back:
    # rotation says it cannot rotate what is not a regular file.
    keeper_log = run_dir / "keeper.log"
    wait_until(lambda: f"cannot rotate {log_file}" in keeper_log.read_text(errors="replace"), timeout=10,
               message=f"the keeper never came back from the FIFO's housekeeping (see {keeper_log})")
    started = time.monotonic()
    assert keeper.request_stop(run_dir, timeout=10)
    assert time.monotonic() - started < 5
