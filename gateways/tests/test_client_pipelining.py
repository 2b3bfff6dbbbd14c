"""Chained access costs one round trip; values stay values."""

from __future__ import annotations

import pytest

from gateways.client import LazyProxy, Proxy, RemoteError, resolve


def frames_for(gateway_connection, action) -> int:
    """Frames the server received for ``action`` (the stats request itself excluded)."""
    before = gateway_connection.stats()["frames_in"]
    action()
    return gateway_connection.stats()["frames_in"] - before - 1


def test_a_chained_method_call_is_one_frame(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    assert frames_for(gateway_connection, lambda: car.engine.describe()) == 1
    assert car.engine.describe() == "engine of 100"


def test_a_method_call_and_a_property_set_are_one_frame_each(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    assert frames_for(gateway_connection, lambda: car.honk()) == 1
    assert frames_for(gateway_connection, lambda: setattr(car, "speed", 3)) == 1
    assert frames_for(gateway_connection, lambda: car.speed) == 1


def test_an_attribute_holding_a_value_returns_the_value_itself(gateway_connection):
    car = gateway_connection.new("gwsample.Car", "Saab")
    make = car.make
    assert type(make) is str and make == "Saab"


def test_an_attribute_holding_an_object_is_lazy_until_used(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    engine = car.engine
    assert isinstance(engine, LazyProxy)
    assert str(engine).startswith("<gwsample.Engine object")
    assert "gwsample.Engine" in repr(engine)
    assert engine.power == 100
    assert isinstance(resolve(engine), Proxy)


def test_a_lazy_reference_follows_the_attribute_when_it_changes(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    engine = car.engine
    car.swap_engine()
    assert engine.describe() == "engine of 101"  # resolved at use, not at access


def test_a_lazy_reference_passed_as_an_argument_resolves_on_the_server(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    assert gateway_connection.invoke("gwsample", "type_name", car.engine) == "Engine"
    assert frames_for(gateway_connection, lambda: gateway_connection.invoke("gwsample", "type_name", car.engine)) == 1


def test_lazy_references_compare_by_the_remote_objects(gateway_connection):
    a = gateway_connection.new("gwsample.Car", "Saab")
    b = gateway_connection.new("gwsample.Car", "Saab")
    a.owner = b
    a.swap_engine()
    assert a.owner == b
    assert resolve(a.owner) == b


def test_an_error_in_a_lazy_chain_surfaces_at_the_point_of_use(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    engine = car.engine
    gateway_connection.invoke("builtins", "delattr", car, "engine")
    with pytest.raises(RemoteError) as info:
        engine.describe()
    assert info.value.remote_type == "AttributeError"
    with pytest.raises(AttributeError):
        str(engine)


def test_a_lazy_reference_that_now_holds_a_value_resolves_to_it(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    engine = car.engine
    gateway_connection.invoke("builtins", "setattr", car, "engine", None)
    assert resolve(engine) is None
    assert not engine
