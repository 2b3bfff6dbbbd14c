"""Reentrancy: the server calls back client objects while the original call is in flight."""

from __future__ import annotations

import pytest

from gateways.client import RemoteError


def test_the_server_can_call_a_client_function_for_each_item(gateway_connection):
    seen = []

    def callback(item):
        seen.append(item)
        return item * 10

    assert gateway_connection.invoke("gwsample", "for_each", [1, 2, 3], callback) == [10, 20, 30]
    assert seen == [1, 2, 3]


def test_callbacks_nest_to_any_depth_in_both_directions(gateway_connection):
    depth = []

    def back(n):
        depth.append(n)
        return gateway_connection.invoke("gwsample", "bounce", n, back)

    assert gateway_connection.invoke("gwsample", "bounce", 30, back) == "bottom"
    assert depth == list(range(29, -1, -1))


def test_the_server_can_use_methods_of_a_client_object(gateway_connection):
    class Accumulator:
        def __init__(self):
            self.total = 0

        def add(self, x):
            self.total += x
            return self.total

    acc = Accumulator()
    assert gateway_connection.invoke("gwsample", "call_method", acc, "add", 5) == 5
    assert gateway_connection.invoke("gwsample", "call_method", acc, "add", 7) == 12
    assert acc.total == 12


def test_a_callback_may_receive_server_objects_and_use_them(gateway_connection):
    car = gateway_connection.new("gwsample.Car", "Saab")
    result = gateway_connection.invoke("gwsample", "call_twice", lambda c: c if isinstance(c, str) else c.make, car)
    assert result == "Saab"


def test_an_exception_in_a_callback_reaches_the_original_caller(gateway_connection):
    def failing(item):
        raise KeyError("client side problem")

    with pytest.raises(RemoteError) as info:
        gateway_connection.invoke("gwsample", "for_each", [1], failing)
    assert info.value.remote_type == "KeyError"
    assert "client side problem" in info.value.remote_message
    assert "test_client_callbacks.py" in info.value.remote_traceback
    assert gateway_connection.ping()


def test_a_callback_from_another_server_thread_is_refused_not_deadlocked(gateway_connection):
    assert gateway_connection.invoke("gwsample", "call_from_other_thread", lambda: 1) == "GatewayError"
    assert gateway_connection.ping()


def test_client_objects_are_released_from_the_client_table_when_the_server_drops_them(gateway_connection):
    gateway_connection.invoke("gwsample", "for_each", [1], lambda x: x)
    gateway_connection.ping()  # the server's release rides on its next message
    gateway_connection.ping()
    assert len(gateway_connection.objects) == 0
