"""A live session on the simulator venue, through every fault the venue can throw at an order.

One session, scans fed in lockstep; each fault is armed when the trader's next order is
known (flat: an entry; holding: an exit) and consumed by that order. After every leg the
books must equal the venue's account, no order may reach the venue twice, and at the end
`dolphin backtest --journal` must replay the live books exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.market.sim import SimExchange
from tests.integration.live.support import LiveHarness, sim_config
from tests.support import wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation, pytest.mark.slow]


def _holding(state) -> bool:
    return state.open_position is not None


def _flat(state) -> bool:
    return state.open_position is None


def test_a_live_session_through_lost_acks_drops_expiry_partials_rate_limits_and_rejects(
        records, member, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SimExchange(sim_config(records)) as sim:
        h = LiveHarness(tmp_path / "home", member, sim, records, monkeypatch)
        h.archive()
        venue = h.venue
        try:
            h.start()
            h.wait_live(lambda s: not s.positions_unknown and s.stream_connected, "the start reconciliation")

            # 1. a plain entry on the user-data stream: the venue's price, quantity and commission are the books
            h.feed_until(_holding)
            h.assert_books_equal_venue()
            entry = h.records_of("fill")[-1]
            assert entry["kind"] == "entry" and entry["fee"] > 0 and entry["model_price"] > 0
            assert entry["slippage_bps"] is not None and entry["venue_ts"] is not None

            # 2. the exit's acknowledgement is lost (the order executed, the connection cut): no duplicate
            venue.fault("ack:mode=drop")
            h.feed_until(_flat)
            assert venue.fired()["ack"] == 1
            h.assert_books_equal_venue()
            h.assert_no_duplicate_orders()

            # 3. the entry answered -1007 "execution status unknown": looked up by its id, followed, not resent
            venue.fault("ack:mode=unknown")
            h.feed_until(_holding)
            assert venue.fired()["ack"] == 2
            assert h.live().lost_acks >= 1
            h.assert_books_equal_venue()
            h.assert_no_duplicate_orders()

            # 4. the exit fills half now and the rest 0.5 s later: one leg, two fills, the full quantity
            venue.fault("partial:ratio=0.5,delay_ms=500")
            h.feed_until(_flat)
            exit_fill = h.records_of("fill")[-1]
            entry_fill = [f for f in h.records_of("fill") if f["trade_id"] == exit_fill["trade_id"]][0]
            assert exit_fill["kind"] == "exit" and exit_fill["quantity"] == entry_fill["quantity"]
            assert h.live().partial_fills >= 1
            h.assert_books_equal_venue()

            # 5. the user-data stream drops and cannot come back for a while: the entry's fills come from REST,
            #    and the reconnect resynchronises and reconciles — no fill missed
            before = h.live()
            venue.fault("error:status=503,code=-1001,path=/fapi/v1/listenKey,method=POST,count=-1")
            venue.drop_user_stream()
            h.wait_live(lambda s: not s.stream_connected, "the user-data stream to drop")
            h.feed_until(_holding)
            venue.clear_faults()
            after = h.wait_live(lambda s: s.stream_connected and s.stream_reconnects > before.stream_reconnects
                                and s.reconciles > before.reconciles + 1, "the stream to reconnect and reconcile")
            assert after.stream_late + after.resyncs >= 1
            h.assert_books_equal_venue()

            # 6. every listen key lapses: the stream renews its key; then the exit meets a 429 / -1003 and waits
            venue.expire_listen_keys()
            h.wait_live(lambda s: s.listen_key_renewals >= 1 and s.stream_connected, "a new listen key")
            venue.fault("error:status=429,code=-1003,path=/fapi/v1/order,method=POST,count=1")
            h.feed_until(_flat)
            assert h.live().rate_limited >= 1
            h.assert_books_equal_venue()
            h.assert_no_duplicate_orders()

            # 7. two entries refused -2019 (insufficient margin): journaled, voided, and two in a row pause trading
            #    (automatically, for 3 s here) — journaled as a kill-switch change that then lapses
            venue.fault("error:status=400,code=-2019,path=/fapi/v1/order,method=POST,count=2,msg=Margin is "
                        "insufficient.")
            h.feed_until(lambda s: len(h.records_of("reject")) >= 2)
            rejects = h.records_of("reject")
            assert [r["reason"] for r in rejects] == ["-2019", "-2019"] and all(r["kind"] == "entry" for r in rejects)
            assert h.flat() and venue.positions() == {}
            wait_until(lambda: h.live().pauses == 1, 30, what="the automatic pause")
            h.feed_until(lambda s: s.kill_level == "pause")
            h.feed_until(lambda s: s.kill_level == "clear", limit=200)   # lapsed after 3 s
            kills = [r["level"] for r in h.records_of("kill")]
            assert kills[-2:] == ["pause", "clear"]
            assert any(a["kind"] == "escalation" for a in h.records_of("alert"))
            h.feed_until(_holding)
            h.feed_until(_flat)
            final = h.live()
            h.assert_books_equal_venue()
            h.assert_no_duplicate_orders()
            assert final.venue_rejects == 2 and final.alerts.get("venue_reject") == 2
            assert final.last_reconcile_ok and not final.active_alerts
        finally:
            h.close()
        h.assert_replay_equals_books()
