"""One connection shared by several threads."""

from __future__ import annotations

import threading


def test_eight_threads_sharing_one_connection_each_get_their_own_answers(gateway_connection):
    cars = [gateway_connection.new("gwsample.Car", f"make{i}") for i in range(8)]
    errors: list = []
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        try:
            for n in range(150):
                assert cars[i].make == f"make{i}"
                assert gateway_connection.invoke("gwsample", "echo", (i, n)) == (i, n)
                assert cars[i].engine.describe() == "engine of 100"
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert gateway_connection.ping()


def test_callbacks_run_on_the_waiting_thread_while_other_threads_share_the_connection(gateway_connection):
    results: dict = {}

    def work(i: int) -> None:
        results[i] = gateway_connection.invoke("gwsample", "for_each", [i, i + 1], lambda x: (threading.get_ident(), x))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    idents = {t.ident for t in threads}
    for i, pairs in results.items():
        assert [x for _, x in pairs] == [i, i + 1]
        assert {ident for ident, _ in pairs} <= idents
    assert len(results) == 4
