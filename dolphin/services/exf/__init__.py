"""The ExF daemon (bible §10.2, §16.7): four external factors → ``DOLPHIN_FEATURES["exf_latest"]``.

`funding_btc` (Binance ``premiumIndex``, ``fundingRate`` as fallback), `taker` (Binance
``takerlongshortRatio``), `dvol_btc` (Deribit DVOL) and `fng` (Fear & Greed), each polled
on its own cadence with its own backoff; a failing source keeps its factor's last value,
with its age, and the payload names the stale factors. See ``docs/risk.md``.
"""
