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
from dolphin.paths import config_dir, display_path

_TOP_LEVEL = {f.name: f for f in fields(StrategyConfig) if f.name not in SECTIONS}
_MAX_EXTENDS_DEPTH = 4


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A bare name (``blue``) resolves to ``configs/<name>.yml``; anything else is a path."""
    text = str(name_or_path)
    candidate = Path(text)
    try:
        if candidate.suffix in (".yml", ".yaml") or candidate.parent != Path("."):
            if not candidate.is_file():
                raise ConfigError(f"config file not found: {display_path(candidate)}")
            return candidate
        path = config_dir() / f"{text}.yml"
        if not path.is_file():
            known = sorted(p.stem for p in config_dir().glob("*.yml") if p.stem != "services")
            raise ConfigError(f"unknown config '{display_path(text)}' (known: {', '.join(known) or 'none'}; "
                              "or pass a .yml path)")
    except OSError as exc:  # a name too long for the file system, a folder we may not enter, …
        raise ConfigError(f"config {display_path(text)}: {exc.strerror or exc}") from None
    return path


def read_yaml(path: Path, *, allow_empty: bool = True) -> dict[str, Any]:
    """The top-level mapping of a YAML file; every failure is a `ConfigError` naming the file.

    An empty file (or comments only) is ``{}`` when ``allow_empty``, else an error: an
    emptied strategy file must not quietly become the built-in defaults.
    """
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        raise ConfigError(f"{display_path(path)}: not valid YAML{where}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display_path(path)}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); is it a binary file?") from None
    except OSError as exc:
        raise ConfigError(f"{display_path(path)}: cannot read ({exc.strerror or exc})") from None
    if data is None or data == {}:
        if allow_empty:
            return {}
        raise ConfigError(f"{display_path(path)}: the file is empty; a strategy config names its parameters "
                          "(or `extends:` another config)")
    if not isinstance(data, dict):
        raise ConfigError(f"{display_path(path)}: top level must be a mapping of sections, got {type(data).__name__}")
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
    data = read_yaml(path, allow_empty=False)
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
