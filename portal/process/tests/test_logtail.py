import os

from portal.process.logtail import follow, rotate_copytruncate, tail


def test_tail_returns_the_last_lines_of_a_big_file(tmp_path):
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert tail(path, 3) == ["line 99997", "line 99998", "line 99999"]
    assert len(tail(path, 200)) == 200
    assert tail(tmp_path / "missing.log") == []


def test_tail_of_a_short_file_without_a_final_newline(tmp_path):
    path = tmp_path / "short.log"
    path.write_text("a\nb\nc")
    assert tail(path, 10) == ["a", "b", "c"]


def test_follow_returns_only_new_complete_lines(tmp_path):
    path = tmp_path / "out.log"
    path.write_text("old\n")
    lines, token = follow(path, None)
    assert lines == []
    with open(path, "a") as f:
        f.write("one\ntw")
    lines, token = follow(path, token)
    assert lines == ["one"]
    with open(path, "a") as f:
        f.write("o\n")
    lines, token = follow(path, token)
    assert lines == ["two"]
    assert follow(path, token) == ([], token)


def test_follow_survives_copytruncate_rotation(tmp_path):
    path = tmp_path / "out.log"
    path.write_text("x" * 100 + "\n")
    _, token = follow(path, None)
    assert rotate_copytruncate(path, max_bytes=50, backups=2)
    with open(path, "a") as f:
        f.write("after\n")
    lines, token = follow(path, token)
    assert lines == ["after"]
    assert (tmp_path / "out.log.1").read_text() == "x" * 100 + "\n"


def test_follow_survives_rename_rotation(tmp_path):
    path = tmp_path / "out.log"
    path.write_text("before\n")
    _, token = follow(path, None)
    os.replace(path, tmp_path / "out.log.1")
    path.write_text("new file\n")
    lines, _ = follow(path, token)
    assert lines == ["new file"]


def test_rotation_keeps_only_n_backups(tmp_path):
    path = tmp_path / "out.log"
    for i in range(5):
        path.write_text(f"generation {i}\n" * 10)
        assert rotate_copytruncate(path, max_bytes=10, backups=2)
    assert (tmp_path / "out.log.1").read_text().startswith("generation 4")
    assert (tmp_path / "out.log.2").read_text().startswith("generation 3")
    assert not (tmp_path / "out.log.3").exists()
    assert path.stat().st_size == 0
    assert not rotate_copytruncate(path, max_bytes=10, backups=2)
