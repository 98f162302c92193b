"""Unknown is never flat; mismatches are alerted; the kill switch's levels hold in live, across a restart.

One session on a slow simulator (its book barely moves, so a post-only order rests until
the test acts on it): the venue cannot report positions at start (UNKNOWN, no entries);
an order of the trader's is cancelled behind its back (orphan, then its market
remainder); a position is opened behind its back (phantom: alerted on the bus, in the TUI
and the journal, entries blocked until it is closed); a stranger's order rests on the
venue (orphan) until `dolphin kill halt` cancels it; the halt and reduce levels hold, the
halt across a restart.
"""

from __future__ import annotations

import io
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
