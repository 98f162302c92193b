"""HMAC signing, signature stripping/verification and the rate-aware server clock."""

from __future__ import annotations

import pytest

from dolphin.market.signing import (
    ServerClock,
    encode_params,
    format_param,
    sign,
    signed_payload,
    strip_signature,
    verify,
)
from tests.support import ManualClock

# Binance's published signing example (API docs, "SIGNED endpoint examples").
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
             "&timestamp=1499827319559")
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_sign_matches_binance_documented_example() -> None:
    assert sign(DOC_SECRET, DOC_QUERY) == DOC_SIGNATURE


def test_body_and_query_are_concatenated_and_signature_removed() -> None:
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    payload, sig = signed_payload(query, body + f"&signature={DOC_SIGNATURE}")
    assert payload == query + body
    assert sig == DOC_SIGNATURE
    payload, sig = signed_payload(f"{DOC_QUERY}&signature={DOC_SIGNATURE}", "")
    assert payload == DOC_QUERY and verify(DOC_SECRET, payload, sig)


def test_verify_rejects_wrong_or_missing_signatures() -> None:
    assert not verify(DOC_SECRET, DOC_QUERY, None)
    assert not verify(DOC_SECRET, DOC_QUERY, "0" * 64)
    assert not verify("other-secret", DOC_QUERY, DOC_SIGNATURE)
    assert verify(DOC_SECRET, DOC_QUERY, DOC_SIGNATURE.upper())
    assert strip_signature("") == ("", None)


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (0.1, "0.1"), (1e-08, "0.00000001"), (25000.0, "25000"), (3, "3"),
    (123456789.125, "123456789.125"), ("BTCUSDT", "BTCUSDT")])
def test_params_are_formatted_without_exponents(value: object, text: str) -> None:
    assert format_param(value) == text


def test_encode_params_keeps_order_skips_none_and_escapes() -> None:
    assert encode_params({"b": 2, "a": None, "c": "x y", "d": "a@b"}) == "b=2&c=x%20y&d=a@b"


def test_server_clock_tracks_offset_and_snaps_real_rate_to_one() -> None:
    mono = ManualClock()
    clock = ServerClock(mono)
    clock.update(100.0, 5_000_000, 100.02)  # server 5,000,000 ms at local 100.01 s
    mono.t = 110.01
    assert clock.now_ms() == 5_010_000
    clock.update(110.0, 5_010_003, 110.02)  # 3 ms of jitter over 10 s: rate ~1.0003 -> snapped to 1
    assert clock.rate == 1.0


def test_server_clock_learns_a_simulated_rate() -> None:
    mono = ManualClock()
    clock = ServerClock(mono)
    clock.update(100.0, 1_000_000, 100.0)
    clock.update(102.0, 1_000_000 + 2000 * 60, 102.0)  # 2 s local = 120 s server: speed 60
    assert clock.rate == pytest.approx(60.0)
    mono.t = 103.0
    assert clock.now_ms() == 1_000_000 + 3000 * 60
