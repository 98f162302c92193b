"""Replay sources built from small kline files: grid checks, gap filling, instrument rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dolphin.market.errors import SimConfigError
from dolphin.market.sim.config import SimConfig
from dolphin.market.sim.source import ReplaySource

T0 = 1_617_667_200_000


def write_csv(path: Path, rows: list[tuple[int, str, float, float, float, float, float]]) -> Path:
    lines = ["ts,symbol,open,high,low,close,volume"] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def bars(symbol: str, n: int, start: float, skip: int | None = None) -> list[tuple]:
    out = []
    price = start
    for i in range(n):
        if i == skip:
            continue
        o, c = price, round(price * 1.001, 2)
        out.append((T0 + i * 60_000, symbol, o, round(max(o, c) + 0.05, 2), round(min(o, c) - 0.05, 2), c, 1.5 + i))
        price = c
    return out


def test_replay_fills_gaps_and_keeps_closes(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "k.csv", bars("BTCUSDT", 30, 100.0) + bars("ZZZUSDT", 30, 5.0, skip=7))
    src = ReplaySource(SimConfig(source=str(csv)))
    assert src.symbols == ("BTCUSDT", "ZZZUSDT") and src.bar_seconds == 60 and src.n_bars == 30
    block = src.bars(0, 30)
    assert block.close[6, 1] == block.close[7, 1] == block.open[7, 1] and block.volume[7, 1] == 0.0
    assert block.close[29, 0] == bars("BTCUSDT", 30, 100.0)[-1][5]
    ins = src.by_symbol["BTCUSDT"]
    assert (ins.price_decimals, ins.tick, ins.vol_decimals) == (2, 0.01, 1)
    path = src.path(10)
    assert path.shape == (61, 2) and path[0, 0] == block.open[10, 0] and path[-1, 0] == block.close[10, 0]
    assert src.price_at(src.end_ms + 60_000)[0] == block.close[29, 0]  # after the data: the last price holds
    assert src.bars(29, 5).n == 1 and src.funding_rates(T0).tolist() == [0.0001, 0.0001]


def test_replay_symbol_selection(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "k.csv", bars("ZZZUSDT", 5, 5.0) + bars("ETHUSDT", 5, 50.0) + bars("BTCUSDT", 5, 100.0))
    assert ReplaySource(SimConfig(source=str(csv))).symbols == ("BTCUSDT", "ETHUSDT", "ZZZUSDT")  # universe first
    assert ReplaySource(SimConfig(source=str(csv), symbols=1)).symbols == ("BTCUSDT",)
    assert ReplaySource(SimConfig(source=str(csv), symbols=("ZZZUSDT",))).symbols == ("ZZZUSDT",)
    with pytest.raises(SimConfigError, match="no klines for NOPEUSDT"):
        ReplaySource(SimConfig(source=str(csv), symbols=("NOPEUSDT",)))


@pytest.mark.parametrize("mutate", ["off_grid", "duplicate", "bad_interval", "missing_file"])
def test_bad_files_are_refused(tmp_path: Path, mutate: str) -> None:
    rows = bars("BTCUSDT", 10, 100.0)
    if mutate == "off_grid":
        rows.append((T0 + 10 * 60_000 + 7, "BTCUSDT", 1.0, 1.0, 1.0, 1.0, 1.0))
    elif mutate == "duplicate":
        rows.append(rows[3])
    elif mutate == "bad_interval":
        rows = [(T0 + i * 7_000_000, "BTCUSDT", 1.0, 1.0, 1.0, 1.0, 1.0) for i in range(5)]
    path = write_csv(tmp_path / "k.csv", rows) if mutate != "missing_file" else tmp_path / "none.csv"
    with pytest.raises(SimConfigError):
        ReplaySource(SimConfig(source=str(path)))


def test_replay_paths_are_deterministic_per_seed(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "k.csv", bars("BTCUSDT", 5, 100.0))
    a = ReplaySource(SimConfig(source=str(csv), seed=1)).path(2)
    b = ReplaySource(SimConfig(source=str(csv), seed=1)).path(2)
    c = ReplaySource(SimConfig(source=str(csv), seed=2)).path(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
