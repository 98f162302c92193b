"""Load and validate strategy configs (configs/blue.yml, configs/green.yml, or any path).

Validation walks every key and collects every problem before failing, so an operator
fixes a bad file in one pass. A config may ``extends:`` another (green extends blue),
deep-merged section by section.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import yaml

from dolphin.engine.params import SECTIONS, StrategyConfig
from dolphin.errors import ConfigError
from dolphin.paths import config_dir

_TOP_LEVEL = {f.name: f for f in fields(StrategyConfig) if f.name not in SECTIONS}
_MAX_EXTENDS_DEPTH = 4


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A bare name (``blue``) resolves to ``configs/<name>.yml``; anything else is a path."""
    text = str(name_or_path)
    candidate = Path(text)
    if candidate.suffix in (".yml", ".yaml") or candidate.parent != Path("."):
        if not candidate.is_file():
            raise ConfigError(f"config file not found: {candidate}")
        return candidate
    path = config_dir() / f"{text}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in config_dir().glob("*.yml") if p.stem != "services")
        raise ConfigError(f"unknown config '{text}' (known: {', '.join(known) or 'none'}; or pass a .yml path)")
    return path


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _load_raw(path: Path, depth: int = 0) -> dict[str, Any]:
    data = read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if depth >= _MAX_EXTENDS_DEPTH:
        raise ConfigError(f"{path}: 'extends' chain deeper than {_MAX_EXTENDS_DEPTH}")
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'extends' must name a config, got {parent!r}")
    parent_path = resolve_config_path(parent) if "/" not in parent else (path.parent / parent)
    if not parent_path.is_file():
        parent_path = path.parent / f"{parent}.yml"
    return _merge(_load_raw(parent_path, depth + 1), data)


def _check_value(where: str, value: Any, default: Any, meta: dict[str, Any]) -> tuple[Any, str | None]:
    """Coerce ``value`` to the type of ``default`` and check its range; (value, problem)."""
    expected = type(default)
    if expected is bool:
        if not isinstance(value, bool):
            return value, f"{where}: must be true or false, got {value!r}"
    elif expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                return value, f"{where}: must be an integer, got {value!r}"
    elif expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, f"{where}: must be a number, got {value!r}"
        value = float(value)
        if not math.isfinite(value):
            return value, f"{where}: must be finite, got {value!r}"
    elif expected is str:
        if not isinstance(value, str):
            return value, f"{where}: must be a string, got {value!r}"
    choices = meta.get("choices")
    if choices and value not in choices:
        return value, f"{where}: must be one of {', '.join(map(str, choices))}, got {value!r}"
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and value < lo:
        return value, f"{where}: {value!r} is below the minimum {lo}"
    if hi is not None and value > hi:
        return value, f"{where}: {value!r} is above the maximum {hi}"
    return value, None


def build_section(name: str, cls: type, raw: Any, problems: list[str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{name}: must be a mapping, got {type(raw).__name__}")
        return cls()
    known = {f.name: f for f in fields(cls)}
    for key in sorted(set(raw) - set(known)):
        problems.append(f"{name}.{key}: unknown key (known: {', '.join(known)})")
    kwargs: dict[str, Any] = {}
    for key, f in known.items():
        if key not in raw:
            continue
        default = f.default if f.default is not MISSING else None
        value, problem = _check_value(f"{name}.{key}", raw[key], default, dict(f.metadata))
        if problem:
            problems.append(problem)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _cross_checks(cfg: StrategyConfig, problems: list[str]) -> None:
    c = cfg.champion
    if not c.min_leverage <= c.max_leverage <= c.abs_max_leverage:
        problems.append("champion: need min_leverage <= max_leverage <= abs_max_leverage, got "
                        f"{c.min_leverage} / {c.max_leverage} / {c.abs_max_leverage}")
    if not c.vel_div_extreme < c.vel_div_threshold < 0:
        problems.append("champion: SHORT needs vel_div_extreme < vel_div_threshold < 0, got "
                        f"{c.vel_div_extreme} / {c.vel_div_threshold}")
    lp = cfg.long
    if not 0 < lp.long_threshold < lp.long_extreme:
        problems.append(f"long: need 0 < long_threshold < long_extreme, got {lp.long_threshold} / {lp.long_extreme}")
    s = cfg.survival
    if not s.turtle <= s.stalker <= s.apex:
        problems.append(f"survival: need turtle <= stalker <= apex, got {s.turtle} / {s.stalker} / {s.apex}")


def config_from_mapping(raw: dict[str, Any], source: str = "<mapping>") -> StrategyConfig:
    """Validate a raw mapping (already merged) into a `StrategyConfig`; all problems at once."""
    problems: list[str] = []
    top: dict[str, Any] = {}
    for key in sorted(set(raw) - set(SECTIONS) - set(_TOP_LEVEL)):
        problems.append(f"{key}: unknown key (sections: {', '.join(SECTIONS)}; "
                        f"settings: {', '.join(_TOP_LEVEL)})")
    for key, f in _TOP_LEVEL.items():
        if key in raw:
            value, problem = _check_value(key, raw[key], f.default, dict(f.metadata))
            if problem:
                problems.append(problem)
            else:
                top[key] = value
    sections = {name: build_section(name, cls, raw.get(name), problems) for name, cls in SECTIONS.items()}
    cfg = StrategyConfig(**top, **sections)
    if not problems:
        _cross_checks(cfg, problems)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems)
    return cfg


def load_config(name_or_path: str | Path = "blue") -> StrategyConfig:
    """Load, merge ``extends`` and validate a strategy config."""
    path = resolve_config_path(name_or_path)
    return config_from_mapping(_load_raw(path), source=str(path))
