"""Proxies behave like the remote objects they stand for."""

from __future__ import annotations

import pytest

from gateways.client import GatewayError, Proxy, RemoteError


def test_new_returns_a_proxy_whose_repr_names_the_remote_class(gateway_connection):
    car = gateway_connection.new("gwsample.Car", "Saab", colour="blue")
    assert isinstance(car, Proxy)
    assert "gwsample.Car" in repr(car)
    assert "Car('Saab')" in repr(car)


def test_attribute_values_come_back_as_plain_values(gateway_connection):
    car = gateway_connection.new("gwsample.Car", "Saab", colour="blue")
    assert car.make == "Saab" and type(car.make) is str
    assert car.colour == "blue"
    assert car.parts == {"doors": 5}
    assert car.owner is None


def test_property_set_and_get_go_through_the_remote_property(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    car.speed = 88
    assert car.speed == 88
    with pytest.raises(RemoteError) as info:
        car.speed = -1
    assert info.value.remote_type == "ValueError"
    assert car.speed == 88


def test_method_calls_take_positional_and_keyword_arguments(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    assert car.honk() == "honk "
    assert car.honk(times=2) == "honk honk "
    assert car.honk(3) == "honk honk honk "


def test_tuples_come_back_as_tuples_and_lists_as_lists(gateway_connection):
    car = gateway_connection.new("gwsample.Car", "Saab", colour="blue")
    assert car.pair() == ("Saab", "blue")
    assert type(car.pair()) is tuple
    assert gateway_connection.invoke("gwsample", "echo", [1, (2, 3), {"k": (4,)}]) == [1, (2, 3), {"k": (4,)}]
    assert type(gateway_connection.invoke("gwsample", "echo", [1])) is list


def test_values_of_every_plain_type_survive_a_round_trip(gateway_connection):
    value = [None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**100, -(3**70), 1.5, "é", b"\x00\xff", {"a": [1]}, {1: 2}]
    assert gateway_connection.invoke("gwsample", "echo", value) == value
    assert gateway_connection.invoke("gwsample", "type_name", (1,)) == "tuple"
    assert gateway_connection.invoke("gwsample", "type_name", b"x") == "bytes"


def test_objects_in_results_come_back_by_reference(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    engine = car.engine
    assert engine.describe() == "engine of 100"
    assert isinstance(gateway_connection.invoke("gwsample", "echo", [car])[0], Proxy)


def test_a_proxy_passed_back_is_the_original_object_on_the_server(gateway_connection):
    car = gateway_connection.new("gwsample.Car", "Saab")
    assert gateway_connection.invoke("gwsample", "type_name", car) == "Car"
    assert gateway_connection.invoke("gwsample", "call_method", car, "honk", 2) == "honk honk "


def test_setting_an_attribute_to_a_proxy_stores_the_remote_object(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    other = gateway_connection.new("gwsample.Car", "Fiat")
    car.owner = other
    assert car.owner.make == "Fiat"


def test_dir_lists_the_remote_members(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    members = dir(car)
    for name in ("make", "honk", "speed", "engine", "wheels"):
        assert name in members


def test_containers_support_len_iteration_and_items(gateway_connection):
    bag = gateway_connection.new("gwsample.Bag", 70)  # more than one iteration batch
    assert len(bag) == 70
    powers = [e.power for e in bag]
    assert powers == list(range(70))
    assert bag[3].power == 3
    bag[3] = gateway_connection.new("gwsample.Engine", 999)
    assert bag[3].power == 999
    d = gateway_connection.new("collections.OrderedDict")
    d["a"] = (1, 2)
    assert d["a"] == (1, 2)
    assert "a" in d
    assert list(d) == ["a"]
    with pytest.raises(KeyError):
        d["missing"]


def test_comparisons_and_truth_are_evaluated_remotely(gateway_connection):
    a = gateway_connection.new("gwsample.Car", "Saab")
    b = gateway_connection.new("gwsample.Car", "Saab")
    c = gateway_connection.new("gwsample.Car", "Fiat")
    assert a == b
    assert a != c
    assert bool(a) is True
    assert str(a) == "Car('Saab')"


def test_static_and_class_level_attributes_and_methods(gateway_connection):
    assert gateway_connection.get_static("gwsample.Car", "wheels") == 4
    gateway_connection.set_static("gwsample.Car", "wheels", 6)
    try:
        assert gateway_connection.new("gwsample.Car").wheels == 6
    finally:
        gateway_connection.set_static("gwsample.Car", "wheels", 4)
    assert gateway_connection.invoke("gwsample.Car", "describe_class") == "a car class"
    built = gateway_connection.invoke("gwsample.Car", "build", "Lada")
    assert built.make == "Lada"
    assert gateway_connection.invoke("os.path", "join", "a", "b") == "a/b"


def test_module_functions_can_be_invoked_on_a_proxy_target(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    assert gateway_connection.invoke(car, "honk", 2) == "honk honk "


def test_remote_exceptions_carry_type_message_and_traceback(gateway_connection):
    with pytest.raises(RemoteError) as info:
        gateway_connection.new("gwsample.Boom")
    err = info.value
    assert err.remote_type == "RuntimeError"
    assert err.remote_message == "constructor exploded"
    assert "Traceback" in err.remote_traceback and "gwsample.py" in err.remote_traceback
    text = str(err)
    assert "RuntimeError: constructor exploded" in text and "gwsample.py" in text
    assert isinstance(err, GatewayError)


def test_a_missing_attribute_is_an_attribute_error_so_hasattr_works(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    assert hasattr(car, "make")
    assert not hasattr(car, "no_such_thing")
    assert getattr(car, "no_such_thing", "default") == "default"


def test_version_reports_protocol_python_and_pid(gateway_connection, gateway_server):
    info = gateway_connection.version()
    assert info["protocol"] == 1
    assert info["pid"] == gateway_server.proc.pid
    assert info["python"].count(".") == 2
    assert gateway_connection.ping() is True


def test_released_proxies_free_the_server_table_in_batches(gateway_connection):
    before = gateway_connection.stats()["objects"]
    cars = [gateway_connection.new("gwsample.Car") for _ in range(20)]
    assert gateway_connection.stats()["objects"] == before + 20
    frames_before = gateway_connection.stats()["frames_in"]
    del cars
    gateway_connection.ping()  # carries the 20 releases; no separate release messages
    after = gateway_connection.stats()
    assert after["objects"] == before
    assert after["frames_in"] - frames_before == 2  # the ping and this stats request only


def test_a_closed_connection_raises_connection_lost(gateway_connection):
    from gateways.client import ConnectionLost

    gateway_connection.close()
    with pytest.raises(ConnectionLost):
        gateway_connection.ping()
