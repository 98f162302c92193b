"""The live trader's counters and alerts as one bus payload (`LiveStatus`, in ``StrategyState.live``).

`dolphin live status` and the TUI's live panel read it from the bus; nothing here holds a
secret (the venue's URL is named, never its keys or the listen key).
"""

from __future__ import annotations

import statistics
import time

from dolphin.bus.payloads import LiveAlertView, LiveStatus
from dolphin.execution.live.alerts import AlertBook, LiveAlert
from dolphin.execution.live.books import VenueBooks
from dolphin.execution.live.escalation import Escalator
from dolphin.execution.live.executor import LiveExecutor
from dolphin.execution.live.reconcile import LiveReconciler
from dolphin.execution.live.userstream import UserStream
from dolphin.execution.live.venue import LiveVenue


def _view(a: LiveAlert) -> LiveAlertView:
    return LiveAlertView(kind=a.kind, symbol=a.symbol, detail=a.detail, at=a.at, action=a.action)


def build_status(venue: LiveVenue, executor: LiveExecutor, books: VenueBooks, stream: UserStream,
                 reconciler: LiveReconciler, escalator: Escalator, alerts: AlertBook,
                 last_slippage_bps: float | None = None) -> LiveStatus:
    c, s, r = executor.counters, stream.stats, reconciler.state
    return LiveStatus(
        network=venue.network, rest_url=venue.rest_url, entry_order=str(executor.entry_order),
        exit_order=str(executor.exit_order), stream_connected=s.connected, stream_connects=s.connects,
        stream_reconnects=s.reconnects, listen_key_renewals=s.renewals, listen_key_expirations=s.expirations,
        keepalives=s.keepalives, keepalive_failures=s.keepalive_failures, storm_waits=s.storm_waits,
        stream_events=s.events, stream_dropped=s.dropped_malformed, resyncs=s.resyncs, last_event_at=s.last_event_at,
        orders=c.orders, legs=c.legs, fills=books.fills, partial_fills=books.partial_fills,
        venue_rejects=c.venue_rejects, risk_rejects=dict(c.risk_rejects), unfilled=c.unfilled, lost_acks=c.lost_acks,
        rate_limited=c.rate_limited, stream_late=c.stream_late, post_only_filled=c.post_only_filled,
        post_only_fallbacks=c.post_only_fallbacks, halt_cancels=c.halt_cancels, last_latency_ms=c.last_latency_ms,
        latency_p50_ms=statistics.median(c.latencies) if c.latencies else None, last_slippage_bps=last_slippage_bps,
        reconciles=r.runs, reconcile_failures=r.failures, last_reconcile_at=r.last_at, last_reconcile_ok=r.last_ok,
        last_reconcile_detail=r.last_detail, positions_unknown=r.unknown_all, disputed=sorted(r.disputed),
        venue_positions={k: v for k, v in sorted(books.positions.items()) if v}, wallet=books.wallet,
        session_start_wallet=escalator.start_wallet, pauses=escalator.pauses, halts=escalator.halts,
        alerts=dict(alerts.counts), active_alerts=[_view(a) for a in alerts.active.values()],
        recent_alerts=[_view(a) for a in alerts.recent], updated_at=time.time())


__all__ = ["build_status"]
