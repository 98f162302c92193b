"""Money math of the simulated account, and its atomic, locked persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.market.errors import SimStartError, SimStateError
from dolphin.market.sim.account import (
    STATE_VERSION,
    AccountState,
    AccountStore,
    Ledger,
    OrderRecord,
    round_to,
)


def ledger(balance: float = 10_000.0) -> Ledger:
    return Ledger(AccountState(version=STATE_VERSION, wallet_balance=balance, next_order_id=1, last_funding_ms=0),
                  {"BTCUSDT": 3}, 10)


def test_average_entry_partial_close_and_flip() -> None:
    lg = ledger()
    lg.fill("BTCUSDT", "BUY", 1.0, 100.0, 0.0, 1)
    lg.fill("BTCUSDT", "BUY", 1.0, 110.0, 0.0, 2)
    pos = lg.position("BTCUSDT")
    assert (pos.amt, pos.entry_price) == (2.0, 105.0)
    assert lg.fill("BTCUSDT", "SELL", 0.5, 120.0, 0.0, 3) == pytest.approx(7.5)
    assert lg.position("BTCUSDT").entry_price == 105.0
    assert lg.fill("BTCUSDT", "SELL", 2.0, 90.0, 0.0, 4) == pytest.approx(-22.5)  # closes 1.5, opens 0.5 short
    pos = lg.position("BTCUSDT")
    assert (pos.amt, pos.entry_price) == (-0.5, 90.0)
    assert lg.fill("BTCUSDT", "BUY", 0.5, 80.0, 0.0, 5) == pytest.approx(5.0)
    assert lg.position("BTCUSDT").amt == 0.0 and lg.position("BTCUSDT").entry_price == 0.0
    assert lg.state.wallet_balance == pytest.approx(10_000.0 + 7.5 - 22.5 + 5.0)


def test_fees_and_funding_hit_the_wallet() -> None:
    lg = ledger()
    lg.fill("BTCUSDT", "BUY", 2.0, 100.0, 0.0005, 1)
    assert lg.state.wallet_balance == pytest.approx(10_000.0 - 0.1)
    assert lg.state.fees_paid == pytest.approx(0.1)
    paid = lg.fund({"BTCUSDT": 0.001}, {"BTCUSDT": 105.0}, 28_800_000)
    assert paid == pytest.approx(0.21) and lg.state.wallet_balance == pytest.approx(10_000.0 - 0.1 - 0.21)
    assert lg.state.last_funding_ms == 28_800_000
    lg.fill("BTCUSDT", "SELL", 4.0, 100.0, 0.0, 2)  # now short 2: receives positive funding
    assert lg.fund({"BTCUSDT": 0.001}, {"BTCUSDT": 100.0}, 57_600_000) == pytest.approx(-0.2)


def test_margins() -> None:
    lg = ledger(1_000.0)
    lg.fill("BTCUSDT", "BUY", 1.0, 100.0, 0.0, 1)
    lg.state.orders.append(OrderRecord(1, "c", "BTCUSDT", "BUY", "LIMIT", "GTC", 90.0, 2.0, False, 1, 1))
    m = lg.margins({"BTCUSDT": 110.0})
    assert m["unrealized"] == pytest.approx(10.0) and m["margin_balance"] == pytest.approx(1_010.0)
    assert m["position_im"] == pytest.approx(11.0) and m["order_im"] == pytest.approx(18.0)
    assert m["available"] == pytest.approx(1_010.0 - 11.0 - 18.0)


def test_round_to_grids() -> None:
    assert round_to(0.1 + 0.2, 3) == 0.3 and round_to(1234.0, -2) == 1200.0


def test_store_roundtrip_lock_and_corruption(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "state")
    store.lock()
    try:
        assert store.load() is None
        lg = ledger()
        lg.fill("BTCUSDT", "BUY", 1.0, 100.0, 0.0, 7)
        lg.state.used_client_ids = ["a", "b"]
        store.save(lg.state)
        other = AccountStore(tmp_path / "state")
        with pytest.raises(SimStartError, match="in use"):
            other.lock()
        loaded = store.load()
        assert loaded is not None and loaded.positions["BTCUSDT"].amt == 1.0 and loaded.used_client_ids == ["a", "b"]
    finally:
        store.unlock()
    (tmp_path / "state" / "account.json").write_text("{not json")
    with pytest.raises(SimStateError):
        AccountStore(tmp_path / "state").load()
    assert AccountStore(None).load() is None and AccountStore(None).path is None


def test_finished_orders_are_pruned_open_ones_never() -> None:
    from dolphin.market.sim.account import HISTORY_LIMIT

    lg = ledger()
    lg.state.orders = [OrderRecord(i, f"c{i}", "BTCUSDT", "BUY", "LIMIT", "GTC", 1.0, 1.0, False, i, i,
                                   status="NEW" if i % 1000 == 0 else "FILLED") for i in range(10_500)]
    lg.prune_orders()
    assert len(lg.state.orders) == 10_500  # within the slack: nothing to do yet
    lg.state.orders += [OrderRecord(i, f"c{i}", "BTCUSDT", "BUY", "LIMIT", "GTC", 1.0, 1.0, False, i, i,
                                    status="CANCELED") for i in range(10_500, 11_500)]
    lg.prune_orders()
    finished = [o for o in lg.state.orders if not o.is_open]
    assert len(finished) == HISTORY_LIMIT and finished[-1].order_id == 11_499
    assert [o.order_id for o in lg.state.orders if o.is_open] == list(range(0, 10_500, 1000))
