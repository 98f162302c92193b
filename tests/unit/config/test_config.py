"""Champion configs: loading, validation (all problems at once), integrity hash, drift, CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from dolphin.config import CHAMPION_HASH, FROZEN_CHAMPION, champion_hash, drift, load_config
from dolphin.errors import ConfigError
from dolphin.paths import config_dir
from tests.support import dolphin

pytestmark = [pytest.mark.config, pytest.mark.data_integrity]

PINNED_CHAMPION_HASH = "a386ce8d610ff6bc"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return dolphin(*args)


def _write(tmp_path: Path, data: dict, name: str = "cfg.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _blue_raw() -> dict:
    return yaml.safe_load((config_dir() / "blue.yml").read_text())


def test_blue_is_the_frozen_champion() -> None:
    cfg = load_config("blue")
    assert cfg.direction == "short" and cfg.direction_sign == -1
    assert cfg.frozen_params() == FROZEN_CHAMPION
    assert champion_hash(cfg.frozen_params()) == CHAMPION_HASH == PINNED_CHAMPION_HASH
    assert drift(cfg.frozen_params()) == []


def test_hash_is_sha256_of_sorted_json() -> None:
    import hashlib

    expected = hashlib.sha256(json.dumps(FROZEN_CHAMPION, sort_keys=True).encode()).hexdigest()[:16]
    assert CHAMPION_HASH == expected


def test_green_extends_blue_as_long() -> None:
    green = load_config("green")
    assert green.name == "green" and green.direction == "long" and green.direction_sign == 1
    assert (green.long.long_threshold, green.long.long_extreme) == (0.01, 0.04)
    assert (green.signal_threshold, green.signal_extreme) == (0.01, 0.04)
    assert green.champion == load_config("blue").champion


def test_integer_literals_for_float_keys_do_not_drift(tmp_path: Path) -> None:
    raw = _blue_raw()
    raw["champion"]["max_leverage"] = 5
    cfg = load_config(_write(tmp_path, raw))
    assert cfg.champion.max_leverage == 5.0 and isinstance(cfg.champion.max_leverage, float)
    assert champion_hash(cfg.frozen_params()) == CHAMPION_HASH


def test_drift_names_each_key(tmp_path: Path) -> None:
    raw = _blue_raw()
    raw["champion"]["fixed_tp_pct"] = 0.01
    raw["acb"]["beta_high"] = 0.9
    raw["survival"]["apex"] = 0.85
    cfg = load_config(_write(tmp_path, raw))
    problems = drift(cfg.frozen_params())
    assert [p.split(":")[0] for p in problems] == ["champion.fixed_tp_pct", "acb.beta_high", "survival.apex"]
    assert champion_hash(cfg.frozen_params()) != CHAMPION_HASH


def test_non_frozen_keys_do_not_drift(tmp_path: Path) -> None:
    raw = _blue_raw()
    raw["initial_capital"] = 10_000
    raw["exits"]["vd_enabled"] = True
    raw["acb"]["dvol_elevated"] = 50.0
    assert drift(load_config(_write(tmp_path, raw)).frozen_params()) == []


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    raw = _blue_raw()
    raw["champion"]["fraction"] = "lots"            # type
    raw["champion"]["max_hold_bars"] = 12.5          # not an integer
    raw["champion"]["dc_skip_contradicts"] = "yes"   # not a bool
    raw["champion"]["min_irp_alignment"] = 1.5       # range
    raw["acb"]["beta_high"] = float("nan")           # not finite
    raw["exits"]["bogus"] = 1                        # unknown key
    raw["direction"] = "sideways"                    # choice
    raw["surprise"] = {}                             # unknown section
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, raw))
    keys = {p.split(":")[0] for p in info.value.problems}
    assert keys == {"champion.fraction", "champion.max_hold_bars", "champion.dc_skip_contradicts",
                    "champion.min_irp_alignment", "acb.beta_high", "exits.bogus", "direction", "surprise"}


def test_cross_field_rules(tmp_path: Path) -> None:
    raw = _blue_raw()
    raw["champion"]["min_leverage"] = 7.0
    with pytest.raises(ConfigError, match="min_leverage <= max_leverage"):
        load_config(_write(tmp_path, raw))


@pytest.mark.parametrize("text", ["champion: [1, 2\n", "- just\n- a list\n", "champion: 3\n"])
def test_malformed_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)


def test_unknown_name_lists_known_configs() -> None:
    with pytest.raises(ConfigError, match="known: blue, green"):
        load_config("purple")


@pytest.mark.cli
def test_cli_show_and_check() -> None:
    shown = _cli("config", "show", "green", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["hash"] == CHAMPION_HASH and data["params"]["direction"] == "long"
    table = _cli("config", "show")
    assert table.returncode == 0 and CHAMPION_HASH in table.stdout
    ok = _cli("config", "check")
    assert ok.returncode == 0 and "match the champion" in ok.stdout


@pytest.mark.cli
def test_cli_check_fails_on_drift(tmp_path: Path) -> None:
    raw = _blue_raw()
    raw["champion"]["max_leverage"] = 4.0
    raw["champion"]["seed"] = 7
    path = _write(tmp_path, raw, "drifted.yml")
    res = _cli("config", "check", str(path))
    assert res.returncode == 4
    assert "champion.max_leverage" in res.stderr and "champion.seed" in res.stderr
    assert "Traceback" not in res.stderr
    as_json = _cli("config", "check", str(path), "--json")
    assert as_json.returncode == 4 and len(json.loads(as_json.stdout)["drift"]) == 2


@pytest.mark.cli
def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    res = _cli("config", "show", "purple")
    assert res.returncode == 3 and "Traceback" not in res.stderr
    assert res.stderr.strip().startswith("error:")
    bad = tmp_path / "bad.yml"
    bad.write_text("champion: [1, 2\n")
    res = _cli("config", "check", str(bad))
    assert res.returncode == 3 and "not valid YAML (line" in res.stderr
