"""The parity classification on hand-made runs: every branch of the cause rules, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dolphin.backtest.parity import Row, Span, Tolerances, compare_execution, compare_inputs
from dolphin.backtest.session import StepFlags
from dolphin.enums import KillLevel, StepCoverage

pytestmark = [pytest.mark.signal_fill]

SCANS = np.arange(100, 201)
TS = SCANS * 5_000


def _span(untraded: range = range(0), unstepped: range = range(0), halted: range = range(0),
          paused: range = range(0), manual: int | None = None) -> Span:
    steps: dict[int, StepFlags] = {}
    for n in SCANS.tolist():
        if n in unstepped:
            continue
        level = "halt" if n in halted else "pause" if n in paused else "clear"
        steps[n] = StepFlags(trade=n not in untraded and n not in halted, acb=None, posture="APEX",
                             kill_switch=level != "clear", manual_exit="BTCUSDT" if n == manual else None,
                             kill_level=level)
    return Span(SCANS, TS, steps)


def _row(entry: int, exit_: int | None, asset: str = "BTCUSDT", price: float = 100.0, exit_price: float = 99.0,
         fees: float = 1.0, reason: str = "FIXED_TP", pnl: float = 10.0) -> Row:
    return Row(asset, "SHORT", entry, entry * 5_000, price, 1000.0, fees, entry, exit_, None if exit_ is None
               else exit_ * 5_000, None if exit_ is None else exit_price, None if exit_ is None else reason,
               None if exit_ is None else pnl)


def _causes(diffs) -> list[tuple[str, str, int]]:  # noqa: ANN001
    return [(str(d.cause), str(d.kind), d.at_scan) for d in diffs]


def test_span_coverage_gaps_and_counts() -> None:
    span = _span(untraded=range(110, 115), unstepped=range(120, 122), halted=range(130, 133))
    assert span.status(111) is StepCoverage.UNTRADED and span.status(121) is StepCoverage.UNSTEPPED
    assert span.status(131) is StepCoverage.HALTED and span.status(140) is StepCoverage.TRADED
    assert [(str(g.kind), g.first_scan, g.last_scan, g.scans) for g in span.gaps()] == [
        ("untraded", 110, 114, 5), ("unstepped", 120, 121, 2), ("halted", 130, 132, 3)]
    assert span.counts() == {StepCoverage.TRADED: 91, StepCoverage.UNTRADED: 5, StepCoverage.UNSTEPPED: 2,
                             StepCoverage.HALTED: 3}
    assert span.first_uncovered(115, 200) == (120, StepCoverage.UNSTEPPED)
    assert span.first_uncovered(122, 200) is None                       # a halt is a control, not a gap
    assert span.first_control(122, 200) == (130, "the kill switch was at halt (no orders)")
    assert [g.first_scan for g in span.gaps(since_ms=125 * 5_000)] == [130]


def test_a_difference_nothing_explains_is_unexplained() -> None:
    """The backtest entered at a traded, unblocked scan with no earlier difference: a bug, not a cascade."""
    span = _span()
    assert _causes(compare_inputs([], [_row(150, 160)], span)) == [("unexplained", "missed", 150)]
    assert _causes(compare_inputs([_row(150, 160)], [], span)) == [("unexplained", "extra", 150)]
    assert _causes(compare_inputs([_row(150, 170)], [_row(150, 160)], span)) == [("unexplained", "changed", 160)]


def test_inputs_stage_causes() -> None:
    gap = _span(untraded=range(155, 158))
    # the backtest's exit at 156 fell in the stale run: live exited later — and missed the re-entry at 170
    diffs = compare_inputs([_row(150, 158)], [_row(150, 156), _row(158, 170, asset="ETHUSDT")], gap)
    assert _causes(diffs) == [("coverage_gap", "changed", 156), ("timing", "missed", 158)]
    # an extra live trade after an earlier difference is a cascade too
    diffs = compare_inputs([_row(150, 158), _row(159, 165, asset="ETHUSDT")], [_row(150, 156)], gap)
    assert _causes(diffs) == [("coverage_gap", "changed", 156), ("timing", "extra", 159)]
    # an entry the backtest took on a scan live never stepped
    assert _causes(compare_inputs([], [_row(121, 130)], _span(unstepped=range(120, 125)))) == [
        ("coverage_gap", "missed", 121)]
    # a pause blocked the entry; an operator's force exit ended a trade early
    assert _causes(compare_inputs([], [_row(140, 150)], _span(paused=range(138, 142)))) == [
        ("control", "missed", 140)]
    manual = compare_inputs([_row(140, 145, reason="MANUAL")], [_row(140, 150)], _span(manual=145))
    assert _causes(manual) == [("control", "changed", 145)] and "force exit" in manual[0].detail
    # a halt kept the position past the backtest's exit
    assert _causes(compare_inputs([_row(140, 151)], [_row(140, 146)], _span(halted=range(145, 151)))) == [
        ("control", "changed", 146)]


def test_execution_stage_drift_and_its_cascades() -> None:
    span = _span()
    tol = Tolerances(price_bps=10.0, fee_bps=1.0)
    model = [_row(110, 120, price=100.0), _row(130, 140, asset="ETHUSDT")]
    venue = [_row(110, 121, price=100.0 * (1 - 0.0020)), _row(125, 135, asset="SOLUSDT")]   # short sold 20 bps lower
    diffs, drift = compare_execution(venue, model, span, tol)
    assert _causes(diffs) == [("fill_price", "changed", 110), ("timing", "changed", 120),
                              ("timing", "extra", 125), ("timing", "missed", 130)]
    assert drift.price_bps == [pytest.approx(20.0)]          # the exit leg is not comparable: another exit scan
    same_fills = compare_execution([_row(125, 135, asset="SOLUSDT")], [], span, tol)[0]
    assert _causes(same_fills) == [("unexplained", "extra", 125)]   # no drift before it: nothing explains it
    fee_only, drift = compare_execution([_row(110, 120, fees=1.5)], [_row(110, 120)], span, tol)
    assert _causes(fee_only) == [("fee", "changed", 110)] and drift.fee_bps == [pytest.approx(5.0)]
    within, drift = compare_execution([_row(110, 120, price=100.05)], [_row(110, 120)], span, tol)
    assert within == [] and drift.price_bps[0] == pytest.approx(-5.0) and drift.fee_bps == [0.0]


def test_kill_levels_name_the_level() -> None:
    span = _span(paused=range(140, 141))
    assert span.entry_block(140) == f"the kill switch was at {KillLevel.PAUSE} (no entries)"
    assert span.entry_block(141) is None


def test_reports_are_validated_at_the_bus_edge() -> None:
    """A report the codec accepts round-trips; an impossible one (coverage above 100 %) is rejected."""
    import msgspec

    from dolphin.bus import schema
    from dolphin.bus.codec import BusCodec, PayloadError
    from dolphin.bus.payloads import ParityReport

    codec = BusCodec(clock=lambda: 1_780_000_000.0)
    good = ParityReport(strategy="blue", status="parity", timestamp=1_779_999_990.0, scan_coverage=1.0)
    wire = codec.encode(schema.FEATURES, schema.PARITY_LATEST, good)
    assert codec.decode(schema.FEATURES, schema.PARITY_LATEST, wire) == good
    bad = msgspec.json.encode({**msgspec.to_builtins(good), "scan_coverage": 1.5}).decode()
    with pytest.raises(PayloadError, match="scan_coverage"):
        codec.decode(schema.FEATURES, schema.PARITY_LATEST, bad)
    assert codec.accept(schema.FEATURES, schema.PARITY_LATEST, '{"status": "nope"}', source="test") is None
