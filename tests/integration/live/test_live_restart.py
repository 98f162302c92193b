"""kill -9 of the live trader (a real process): while holding, and in the middle of an order.

First while a venue position is open and nothing is in flight: the restart rebuilds the
same books from its journal and the start reconciliation agrees with the venue before
any new order. Then while the exit order is on the wire — the venue executed it, its
acknowledgement is held back, the journal has no fill: the restart replays the step,
finds the order at the venue by its deterministic client order id and books the venue's
fill — it does not send the exit again. Nothing lost, nothing doubled; the keys never
appear in a log, the journal or a bus payload. Last, what an OS crash before the
write-ahead fsync leaves (the journal cut back before an entry that reached the venue):
a phantom, nothing resent, the rewound trade id's entry refused on -4116, not adopted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dolphin.bus import schema
from dolphin.market.sim import SimExchange
from dolphin.store.arrow_scans import write_scan
from tests.integration.live.support import API_KEY, API_SECRET, LiveHarness, sim_config
from tests.support import wait_until

pytestmark = [pytest.mark.actor, pytest.mark.degradation, pytest.mark.slow]


def _secrets_absent(h: LiveHarness) -> None:
    """Neither key appears in any file the trader wrote nor in any payload it published."""
    for path in h.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert API_KEY.encode() not in data and API_SECRET.encode() not in data, f"a key in {path}"
    for name in (schema.STATE_BLUE, schema.PNL_BLUE):
        raw_map = h.client.get_map(name).blocking()
        keys = raw_map.key_set()
        assert keys or name != schema.STATE_BLUE
        for key in keys:
            raw = str(raw_map.get(key))
            assert API_KEY not in raw and API_SECRET not in raw, f"a key in {name}[{key}]"
    status = h.cli("live", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert API_KEY not in status.stdout + status.stderr and API_SECRET not in status.stdout + status.stderr


def test_kill_9_holding_and_mid_order_restarts_reconcile_without_duplicates(records, member, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with SimExchange(sim_config(records)) as sim:
        h = LiveHarness(tmp_path / "home", member, sim, records, monkeypatch)
        h.archive()
        venue = h.venue
        try:
            h.start_process()
            h.wait_live(lambda s: not s.positions_unknown and s.stream_connected, "the start reconciliation")

            # 1. kill -9 while holding: the same books come back, and agree with the venue before the next order
            held = h.feed_until(lambda s: s.open_position is not None)
            h.assert_books_equal_venue()
            orders_before = len(venue.orders())
            h.kill9()
            restarted = h.start_process()
            assert restarted.open_position == held.open_position and restarted.capital == held.capital
            h.wait_live(lambda s: s.reconciles >= 1 and s.last_reconcile_ok and not s.positions_unknown
                        and not s.active_alerts, "the restarted trader to reconcile with the venue")
            assert len(venue.orders()) == orders_before, "the restart sent an order"
            h.assert_books_equal_venue()

            # 2. kill -9 with the exit on the wire: executed at the venue, its acknowledgement held back
            venue.fault("ack:mode=delay,delay_ms=20000,count=1")
            rec, sent = h.put_until_an_order_leaves()
            assert len(sent) == 1 and sent[0].endswith("-x"), sent
            wait_until(lambda: venue.positions() == {}, 30, what="the venue to execute the exit")
            h.kill9()
            assert sent[0] not in {r["client_order_id"] for r in h.records_of("fill")}, "the fill was journaled"
            assert h.records_of("scan")[-1]["scan_number"] == rec.scan_number      # written ahead of the order
            venue.clear_faults()
            after = h.start_process()
            assert after.open_position is None and after.last_scan_number == rec.scan_number
            exit_fill = h.records_of("fill")[-1]
            assert exit_fill["client_order_id"] == sent[0] and exit_fill["kind"] == "exit"
            assert exit_fill["trade_id"] == held.open_position.trade_id
            assert venue.client_ids().count(sent[0]) == 1, "the exit was sent again"
            assert "from the venue after a restart" in h.log_text()
            h.assert_books_equal_venue()
            h.assert_no_duplicate_orders()

            # 3. it trades on: another round trip, books still the venue's
            h.feed_until(lambda s: s.open_position is not None)
            h.feed_until(lambda s: s.open_position is None)
            h.assert_books_equal_venue()
            h.assert_no_duplicate_orders()
            fills = h.records_of("fill")
            assert len({f["client_order_id"] for f in fills}) == len(fills)
            assert len([c for c in venue.client_ids() if c.startswith("dol")]) == len(fills)
            _secrets_absent(h)

            # 4. an OS crash before the write-ahead input's fsync (docs/trader.md): the entry left, the input never
            #    reached the disk. The restart finds the venue's position as a phantom and sends nothing; the
            #    operator closes it; the engine's next trade reuses the lost trade id, whose entry id the venue
            #    already holds (-4116 on its first send): refused, not adopted — then the next trade fills
            venue.fault("ack:mode=delay,delay_ms=20000,count=1")
            rec, sent = h.put_until_an_order_leaves()
            assert len(sent) == 1 and sent[0].endswith("-e"), sent
            lost = wait_until(lambda: venue.positions(), 30, what="the venue to execute the entry")
            h.kill9()
            path = h.journal_path()
            data = path.read_bytes()
            cut = data.rfind(b'{"type":"scan"')
            assert json.loads(data[cut:])["scan_number"] == rec.scan_number
            path.write_bytes(data[:cut])                 # what the disk holds when the page cache was lost
            write_scan(h.home, rec)                      # the scanner had archived the scan
            venue.clear_faults()
            orders = len(venue.orders())
            h.start_process()
            (symbol, amount), = lost.items()
            h.wait_live(lambda s: any(a.kind == "phantom_position" and a.symbol == symbol for a in s.active_alerts),
                        "the lost entry to be found as a phantom position")
            assert len(venue.orders()) == orders, "the restart sent an order"
            rest = venue.rest()
            try:
                hand = rest.new_order(symbol, "SELL" if amount > 0 else "BUY", "MARKET", abs(amount), reduce_only=True,
                                      new_client_order_id="manual-close-phantom")
                h.wait_live(lambda s: not s.active_alerts, "the phantom to be resolved")
                h.feed_until(lambda s: any(r["reason"] == "-4116" for r in h.records_of("reject")))
                refused = h.records_of("reject")[-1]
                assert refused["client_order_id"] == sent[0] and refused["kind"] == "entry"
                held = h.feed_until(lambda s: s.open_position is not None)
                assert held.open_position.trade_id == refused["trade_id"] + 1
                lost_order = [o for o in venue.orders() if o.client_order_id == sent[0]][0]
                ids = {hand.order_id, lost_order.order_id}
                behind_back = sum(t.realized_pnl - t.commission for t in rest.user_trades(symbol)
                                  if t.order_id in ids)
            finally:
                rest.close()
            h.assert_books_equal_venue(behind_back=behind_back)
            h.assert_no_duplicate_orders()
        finally:
            h.close()
        h.assert_replay_equals_books()
