"""Bus settings from the environment and the client options built from them."""

from __future__ import annotations

import math

import pytest

from dolphin.bus import BusConfigError, BusSettings, client_options
from dolphin.bus.settings import default_member_data_dir


def test_empty_members_means_the_local_embedded_member() -> None:
    s = BusSettings.from_env({})
    assert s.members == ("127.0.0.1:5701",) and s.embedded and s.cluster_name == "dolphin"
    assert BusSettings.from_env({"DOLPHIN_HZ_PORT": "5799"}).members == ("127.0.0.1:5799",)


def test_a_real_cluster_from_the_environment() -> None:
    s = BusSettings.from_env({
        "DOLPHIN_HZ_MEMBERS": "10.0.0.1:5701, 10.0.0.2:5702",
        "DOLPHIN_HZ_CLUSTER": "prod",
        "DOLPHIN_HZ_USERNAME": "ops",
        "DOLPHIN_HZ_PASSWORD": "hunter2-secret",
        "DOLPHIN_HZ_CONNECT_TIMEOUT": "7.5",
        "DOLPHIN_HZ_SMART_ROUTING": "0",
    })
    assert s.members == ("10.0.0.1:5701", "10.0.0.2:5702") and not s.embedded
    assert (s.cluster_name, s.connect_timeout_s, s.smart_routing) == ("prod", 7.5, False)
    assert "hunter2-secret" not in repr(s) and "hunter2-secret" not in s.describe()
    options = client_options(s)
    assert options["creds_username"] == "ops" and options["creds_password"] == "hunter2-secret"


def test_the_connect_timeout_is_never_infinite() -> None:
    options = client_options(BusSettings.from_env({}))
    assert math.isfinite(options["cluster_connect_timeout"]) and options["cluster_connect_timeout"] > 0
    assert options["invocation_timeout"] < 120  # the client's default
    assert options["statistics_enabled"] is False


@pytest.mark.parametrize("env", [
    {"DOLPHIN_HZ_MEMBERS": "nohost"},
    {"DOLPHIN_HZ_MEMBERS": "host:99999"},
    {"DOLPHIN_HZ_CONNECT_TIMEOUT": "soon"},
    {"DOLPHIN_HZ_CONNECT_TIMEOUT": "-1"},
    {"DOLPHIN_HZ_CONNECT_TIMEOUT": "inf"},
    {"DOLPHIN_HZ_USERNAME": "ops"},
    {"DOLPHIN_HZ_SMART_ROUTING": "maybe"},
])
def test_bad_settings_are_operator_errors(env: dict[str, str]) -> None:
    with pytest.raises(BusConfigError) as info:
        BusSettings.from_env(env)
    assert info.value.exit_code == 11


def test_default_data_dir_is_under_the_runtime_root(runtime_root) -> None:  # type: ignore[no-untyped-def]
    assert default_member_data_dir() == runtime_root / "hz"
