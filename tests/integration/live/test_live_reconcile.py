"""Unknown is never flat; mismatches are alerted; the kill switch's levels hold in live, across a restart.

One session on a slow simulator (its book barely moves, so a post-only order rests until
the test acts on it): the venue cannot report positions at start (UNKNOWN, no entries);
an order of the trader's is cancelled behind its back (orphan, then its market
remainder); a position is opened behind its back (phantom: alerted on the bus, in the TUI
and the journal, entries blocked until it is closed); a stranger's order rests on the
venue (orphan) until `dolphin kill halt` cancels it; the halt and reduce levels hold, the
halt across a restart.

A second, shorter session: the position changed behind the trader's back to the other
side (side_mismatch, policy alert) and to another size (size_mismatch, policy escalate:
the kill switch halts, persisted); the venue's funding (the simulator's loopback drill
``POST /sim/v1/funding``) booked once through ACCOUNT_UPDATE; a reconnect storm (every
stream dropped every 300 ms) held by the storm guard.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import pytest
from rich.console import Console

from dolphin.bus import BusEvent, schema
from dolphin.enums import KillLevel
from dolphin.execution.controls import TraderControls
from dolphin.market.sim import SimExchange
from tests.integration.live.support import LiveHarness, sim_config
from tests.support import wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation, pytest.mark.slow]



def _panel_text(state_payload) -> str:
    """What the TUI's live panel shows for this trader state."""
    from tui.panels.live import LivePanel
    from tui.state import TuiState

    tui = TuiState()
    tui.deliver(BusEvent(map_name=schema.STATE_BLUE, key=schema.LATEST, kind="UPDATED", payload=state_payload,
                         received_at=time.time()))
    panel = LivePanel(tui, id="live")
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(panel.body(tui.clock()))
    return out.getvalue()


def test_unknown_orphan_phantom_and_the_kill_switch_in_live(records, member, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    live = {"entry_order": "post_only", "post_only_timeout_s": 120.0}
    with SimExchange(sim_config(records, speed=0.05)) as sim:
        h = LiveHarness(tmp_path / "home", member, sim, records, monkeypatch, live=live)
        h.archive()
        venue = h.venue
        rest = venue.rest()
        try:
            # 1. the venue does not report positions at start: every position UNKNOWN, entries refused
            venue.fault("error:status=503,code=-1001,path=/fapi/v2/positionRisk,count=-1")
            h.start()
            state = h.wait_live(lambda s: s.positions_unknown and any(a.kind == "unknown_position"
                                                                      for a in s.active_alerts), "UNKNOWN positions")
            h.feed_until(lambda s: any(r["reason"] == "unknown_position" for r in h.records_of("reject")))
            assert not [c for c in venue.client_ids() if c.startswith("dol")], "an order left while UNKNOWN"
            assert h.flat()
            venue.clear_faults()
            h.wait_live(lambda s: not s.positions_unknown and not s.active_alerts, "a reconciliation to succeed")

            # 2. the post-only entry rests; it is cancelled behind the trader's back: orphan, then the remainder
            #    goes out as market and the entry is filled
            while True:
                rec = h.put_next()
                resting = wait_until(lambda rec=rec: h.stepped(rec) or [o for o in rest.open_orders()
                                                                if o.client_order_id.startswith("dol")],
                                     60, what="the step or a resting order of the trader's")
                if resting is not True:
                    break
            order = resting[0]
            rest.cancel_order(order.symbol, orig_client_order_id=order.client_order_id)
            wait_until(lambda: h.stepped(rec), 60, what="the entry to complete by its market remainder")
            state = h.state()
            assert state.open_position is not None and state.open_position.asset == order.symbol
            fill = h.records_of("fill")[-1]
            assert fill["client_order_id"] == order.client_order_id and "+" in fill["venue_order_id"]
            assert order.client_order_id + ".m" in venue.client_ids()
            assert h.live().post_only_fallbacks == 1
            orphans = [a for a in h.records_of("alert") if a["kind"] == "orphan_order"]
            assert orphans and "without the trader asking" in orphans[0]["detail"]
            h.assert_books_equal_venue()

            # 3. a position opened behind the trader's back: phantom — on the bus, in the TUI, in the journal
            PHANTOM = "ETHUSDT" if order.symbol != "ETHUSDT" else "BTCUSDT"
            strangers = [rest.new_order(PHANTOM, "BUY", "MARKET", 0.1, new_client_order_id="manual-phantom")]
            state = h.wait_live(lambda s: PHANTOM in s.disputed, "the phantom position to be seen")
            assert any(a.kind == "phantom_position" and a.symbol == PHANTOM for a in state.active_alerts)
            assert "phantom_position" in _panel_text(h.state())
            assert any(a["kind"] == "phantom_position" and a["symbol"] == PHANTOM for a in h.records_of("alert"))
            h.feed_until(lambda s: s.open_position is None)             # the engine's own position still exits
            h.feed_until(lambda s: any(r["reason"] == "max_open_positions" for r in h.records_of("reject")))
            assert venue.positions() == {PHANTOM: pytest.approx(0.1)}

            # 4. the phantom is closed: resolved; a stranger's order rests on the venue: orphan
            strangers.append(rest.new_order(PHANTOM, "SELL", "MARKET", 0.1, reduce_only=True,
                                            new_client_order_id="manual-close"))
            h.wait_live(lambda s: not s.disputed and not any(a.kind == "phantom_position" for a in s.active_alerts),
                        "the phantom to be resolved")
            mark = rest.premium_index(PHANTOM).mark_price
            tick = 0.01
            rest.new_order(PHANTOM, "BUY", "LIMIT", 0.1, price=round(mark * 0.97 / tick) * tick,
                           time_in_force="GTC", new_client_order_id="manual-resting")
            h.wait_live(lambda s: any(a.kind == "orphan_order" and "manual-resting" in a.detail
                                      for a in s.active_alerts), "the stranger's order to be alerted")

            # 5. halt from the CLI: every open order on the venue is cancelled; no order while halted
            res = h.cli("kill", "halt", "--reason", "live test")
            assert res.returncode == 0, res.stderr
            h.wait_live(lambda s: s.halt_cancels >= 1, "the halt to cancel the open orders")
            assert rest.open_orders() == []
            h.feed_until(lambda s: s.kill_level == "halt")
            orders = len(venue.orders())
            for _ in range(30):
                h.step(records[h.next_scan - 1])
                h.next_scan += 1
            assert len(venue.orders()) == orders
            assert h.records_of("kill")[-1]["level"] == "halt"

            # 6. the halt survives a restart; reduce (set the TUI's way) and clear (the CLI) are obeyed
            h.stop()
            h.start()
            h.feed_until(lambda s: True)
            assert h.state().kill_level == "halt"
            TraderControls.configured().kill.engage(KillLevel.REDUCE, reason="tui path", by="test (tui)")
            state = h.feed_until(lambda s: s.kill_level == "reduce")
            assert state.kill_by == "test (tui)"
            for _ in range(20):
                h.step(records[h.next_scan - 1])
                h.next_scan += 1
            assert len(venue.orders()) == orders, "an order left under reduce while flat"
            res = h.cli("kill", "clear")
            assert res.returncode == 0, res.stderr
            h.feed_until(lambda s: s.kill_level == "clear")
            assert [r["level"] for r in h.records_of("kill")][-3:] == ["halt", "reduce", "clear"]
            ids = {o.order_id for o in strangers}
            behind_back = sum(t.realized_pnl - t.commission for t in rest.user_trades(PHANTOM) if t.order_id in ids)
            h.assert_books_equal_venue(behind_back=behind_back)   # the books hold all but the stranger's round trip
            phantoms = [a for a in h.records_of("alert") if a["kind"] == "phantom_position"]
            assert [a["action"] for a in phantoms] == ["alert", "info"]      # raised once, resolved once
        finally:
            rest.close()
            h.close()
        h.assert_replay_equals_books()


def test_side_and_size_mismatches_the_escalate_policy_funding_and_the_storm_guard(records, member, tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The position changed behind the trader's back — to the other side (policy alert), then to another size
    (policy escalate: the kill switch halts, persisted); the venue's funding reaches the books through
    ACCOUNT_UPDATE; then the venue drops the streams every 300 ms and the storm guard caps the reconnects."""
    from dolphin.execution.live.escalation import BY
    from dolphin.execution.live.filters import filters_from

    cap = 4
    live = {"on_size_mismatch": "escalate", "reconnects_per_min": cap}
    with SimExchange(sim_config(records)) as sim:
        h = LiveHarness(tmp_path / "home", member, sim, records, monkeypatch, live=live)
        h.archive()
        venue = h.venue
        rest = venue.rest()
        strangers = []
        try:
            started = time.monotonic()
            h.start()
            h.wait_live(lambda s: not s.positions_unknown and s.stream_connected, "the start reconciliation")
            held = h.feed_until(lambda s: s.open_position is not None).open_position
            symbol = held.asset
            amount = venue.position(symbol)
            assert amount != 0 and (amount < 0) == (held.side == "SHORT")
            f = filters_from(rest.exchange_info())[symbol]
            mark = rest.premium_index(symbol).mark_price
            extra = round(math.ceil(2 * f.min_notional / mark / f.step) * f.step, 8)   # a valid order, > 1 step
            grow, shrink = ("BUY", "SELL") if amount > 0 else ("SELL", "BUY")

            # 1. the venue's position turned to the other side: side_mismatch, policy alert — no escalation
            strangers.append(rest.new_order(symbol, shrink, "MARKET", round(2 * abs(amount), 8),
                                            new_client_order_id="manual-flip"))
            state = h.wait_live(lambda s: any(a.kind == "side_mismatch" for a in s.active_alerts), "side_mismatch")
            assert symbol in state.disputed
            assert TraderControls.configured().kill.state().level is KillLevel.CLEAR
            side = h.wait_until_journaled("side_mismatch")
            assert side[0]["symbol"] == symbol and side[0]["action"] == "alert"

            # 2. the same side again, but larger: size_mismatch, policy escalate — halt, persisted in the switch's file
            strangers.append(rest.new_order(symbol, grow, "MARKET", round(2 * abs(amount) + extra, 8),
                                            new_client_order_id="manual-grow"))
            state = h.wait_live(lambda s: any(a.kind == "size_mismatch" for a in s.active_alerts)
                                and not any(a.kind == "side_mismatch" for a in s.active_alerts), "size_mismatch")
            kill = TraderControls.configured().kill.state()
            assert kill.level is KillLevel.HALT and kill.by == BY and "size_mismatch" in kill.reason
            assert state.halts == 1
            size = h.wait_until_journaled("size_mismatch")
            assert size[0]["action"] == "escalate" and size[0]["symbol"] == symbol
            assert any(a["kind"] == "escalation" and "halt" in a["detail"] for a in h.records_of("alert"))
            status = h.cli("live", "status")
            assert status.returncode == 0, status.stderr
            assert "ACTIVE size_mismatch" in status.stdout, status.stdout
            shown = json.loads(h.cli("live", "status", "--json").stdout)
            assert shown["alerts"]["side_mismatch"] == 1 and shown["alerts"]["size_mismatch"] == 1
            assert shown["halts"] == 1
            h.feed_until(lambda s: s.kill_level == "halt")
            assert h.records_of("kill")[-1]["level"] == "halt" and h.records_of("kill")[-1]["by"] == BY

            # 3. the stranger's extra is closed: books and venue agree; the halt stays (only an operator clears it)
            strangers.append(rest.new_order(symbol, shrink, "MARKET", extra, reduce_only=True,
                                            new_client_order_id="manual-trim"))
            h.wait_live(lambda s: not s.active_alerts and s.last_reconcile_ok, "books and venue to agree again")
            assert venue.position(symbol) == pytest.approx(amount)

            # 4. funding: the venue settles it (ACCOUNT_UPDATE FUNDING_FEE); booked once, at the next step
            paid = venue.settle_funding()
            assert set(paid) == {symbol} and paid[symbol] != 0
            state = h.feed_until(lambda s: h.records_of("cash"), limit=60)
            cash = h.records_of("cash")
            assert [(c["reason"], c["amount"]) for c in cash] == [("FUNDING_FEE", pytest.approx(paid[symbol]))]
            assert state.open_position == held                          # held through the halt
            ids = {o.order_id for o in strangers}
            behind_back = sum(t.realized_pnl - t.commission for t in rest.user_trades(symbol) if t.order_id in ids)
            h.assert_books_equal_venue(behind_back=behind_back)
            for _ in range(3):                                          # never booked twice
                h.step(records[h.next_scan - 1])
                h.next_scan += 1
            assert len(h.records_of("cash")) == 1

            # 5. a reconnect storm: every stream dropped every 300 ms; at most `cap` connections in any minute
            venue.fault("ws_drop:target=all,every_ms=300")
            state = h.wait_live(lambda s: s.storm_waits >= 1 and any(a.kind == "stream" for a in s.recent_alerts),
                                "the storm guard to hold the reconnects")
            minutes = int((time.monotonic() - started) // 60) + 1
            assert state.stream_connects <= cap * minutes, (state.stream_connects, minutes)
            assert any(a["kind"] == "stream" and "storm guard" in a["detail"] for a in h.wait_until_journaled("stream"))
            shown = json.loads(h.cli("live", "status", "--json").stdout)
            assert shown["storm_waits"] >= 1 and shown["stream_connects"] <= cap * minutes + cap
            assert "storm waits" in h.cli("live", "status").stdout
            venue.clear_faults()
        finally:
            rest.close()
            h.close()
