"""A family split across hosts (`dolphin up --only`, DOLPHIN_PROGRAMS) and an external bus in the rendered config."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.config.services import load_services_config, override
from dolphin.errors import UsageError
from dolphin.supervision.programs import check_selection, enabled_programs, resolve
from dolphin.supervision.render import FamilyPaths, program_environment, render
from dolphin.supervision.secrets import FamilySecrets


def test_only_selects_this_hosts_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOLPHIN_HZ_MEMBERS", raising=False)
    cfg = override(load_services_config(), "supervisor", programs="sim, scanner,mhs")
    check_selection(cfg)
    assert [p.name for p in enabled_programs(cfg)] == ["sim", "scanner", "mhs"]
    assert resolve("scanner", cfg).name == "scanner"
    with pytest.raises(Exception, match="configured off in this family"):
        resolve("trader", cfg)  # another host's program
    assert [p.name for p in enabled_programs(load_services_config())][:3] == ["hz", "sim", "scanner"]


def test_a_selection_must_name_programs_of_this_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOLPHIN_HZ_MEMBERS", "10.0.0.1:5701")
    with pytest.raises(UsageError, match=r"--only names hz, nosuch, not a program of this family \(valid: sim"):
        check_selection(override(load_services_config(), "supervisor", programs="nosuch,hz,trader"))


def test_the_environment_selects_too_and_reaches_every_program(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("DOLPHIN_PROGRAMS", "trader")
    monkeypatch.setenv("DOLPHIN_HZ_MEMBERS", "10.0.0.1:5701,10.0.0.2:5701")
    cfg = load_services_config()
    assert [p.name for p in enabled_programs(cfg)] == ["trader"]
    env = program_environment(cfg, FamilyPaths.for_home(tmp_path))
    assert env["DOLPHIN_PROGRAMS"] == "trader" and env["DOLPHIN_HZ_MEMBERS"] == "10.0.0.1:5701,10.0.0.2:5701"
    conf = render(cfg, FamilyPaths.for_home(tmp_path), FamilySecrets())
    assert "[program:trader]" in conf and "[program:hz]" not in conf and "[program:scanner]" not in conf
    monkeypatch.delenv("DOLPHIN_HZ_MEMBERS")
    monkeypatch.delenv("DOLPHIN_PROGRAMS")
    assert program_environment(load_services_config(), FamilyPaths.for_home(tmp_path))["DOLPHIN_HZ_MEMBERS"] == ""
