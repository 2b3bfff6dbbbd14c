import pytest

from portal.process.spec import Spec


def gateway_spec(**fields) -> Spec:
    return Spec(name="gw", argv=["python3", "-m", "gateways.server", "--port", "55001"],
                env={"GATEWAY_PASSPHRASE": "s3cret", "OTHER": "visible"}, secret_env=["GATEWAY_PASSPHRASE"],
                probe={"kind": "import", "path": "gateways.probe:ping", "host": "127.0.0.1", "port": 55001, "verifier": "pbkdf2_sha256$x"},
                **fields)


def test_a_spec_round_trips_through_json():
    spec = gateway_spec(restart_policy="always", expected_exit_codes=[0, 2])
    assert Spec.from_json(spec.to_json()) == spec


def test_the_display_command_masks_secrets_and_never_uses_a_shell():
    spec = Spec(name="x", argv=["prog", "--flag", "has s3cret inside", "two words"],
                env={"GATEWAY_PASSPHRASE": "s3cret"}, secret_env=["GATEWAY_PASSPHRASE"])
    assert spec.masked_argv() == ["prog", "--flag", "has **** inside", "two words"]
    assert spec.display_command() == "GATEWAY_PASSPHRASE=**** prog --flag 'has **** inside' 'two words'"


def test_the_redacted_form_hides_secret_env_and_the_probe_verifier():
    data = gateway_spec().redacted_dict()
    assert data["env"] == {"GATEWAY_PASSPHRASE": "****", "OTHER": "visible"}
    assert data["probe"]["verifier"] == "****"
    assert "s3cret" not in str(data) and "pbkdf2" not in str(data)


def test_backoff_doubles_up_to_the_maximum():
    spec = gateway_spec(backoff_base=0.5, backoff_max=3.0)
    assert [spec.backoff_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_restart_policy_decides_after_an_exit():
    assert gateway_spec(restart_policy="on-failure").should_restart(False)
    assert not gateway_spec(restart_policy="on-failure").should_restart(True)
    assert gateway_spec(restart_policy="on-failure").should_restart(None)  # unknown counts as failure
    assert gateway_spec(restart_policy="always").should_restart(True)
    assert not gateway_spec(restart_policy="never").should_restart(False)


@pytest.mark.parametrize(("fields", "message"), [
    ({"argv": []}, "argv must be a non-empty list"),
    ({"restart_policy": "sometimes"}, "restart_policy 'sometimes' is not one of"),
    ({"probe": {"kind": "udp"}}, "probe kind 'udp' is not one of"),
    ({"probe": {"kind": "tcp"}}, "a tcp probe needs a port"),
    ({"max_quick_failures": 0}, "at least 1"),
])
def test_an_invalid_spec_is_refused_with_a_readable_message(fields, message):
    data = {"name": "x", "argv": ["prog"], **fields}
    with pytest.raises(ValueError, match=message):
        Spec(**data)
