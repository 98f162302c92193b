"""The symbol universe: DOLPHIN's 50 priority perpetuals and the wider USDT-M list.

Why a fixed, ordered list: the eigen scan's correlation matrices are computed on an exact
universe (bible §27.7 — changing it is a schema migration), and the synthetic market keys
every per-symbol property and random stream by a symbol's *position* in this order, so
``universe(540)[:50] == PRIORITY_SYMBOLS`` and a 50-symbol market is column for column the
first 50 columns of a 540-symbol one (bible §26.2: the OBF universe covers 540 perps).

The names after the priority block are real Binance USD-M USDT perpetuals (some since
renamed or delisted — they only have to look and sort like real tickers); the tail is
filled with deterministic synthetic tickers ``SYN001USDT``, ``SYN002USDT``, ….
"""

from __future__ import annotations

MAX_UNIVERSE = 540
"""Largest universe ``universe`` serves: Binance's count of active USDT perps (bible §26.2)."""

PRIORITY_SYMBOLS: tuple[str, ...] = (
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT",
    "ADAUSDT", "DOGEUSDT", "TRXUSDT", "AVAXUSDT", "LINKUSDT",
    "DOTUSDT", "LTCUSDT", "BCHUSDT", "ATOMUSDT", "NEARUSDT",
    "UNIUSDT", "ETCUSDT", "FILUSDT", "APTUSDT", "ARBUSDT",
    "OPUSDT", "SUIUSDT", "INJUSDT", "AAVEUSDT", "XLMUSDT",
    "HBARUSDT", "ICPUSDT", "VETUSDT", "ALGOUSDT", "SANDUSDT",
    "MANAUSDT", "AXSUSDT", "EGLDUSDT", "THETAUSDT", "XTZUSDT",
    "EOSUSDT", "GRTUSDT", "CRVUSDT", "MKRUSDT", "SNXUSDT",
    "COMPUSDT", "RUNEUSDT", "KAVAUSDT", "ZECUSDT", "DASHUSDT",
    "NEOUSDT", "CHZUSDT", "ENJUSDT", "IOTAUSDT", "STXUSDT",
)
"""The 50 doctrinal priority symbols, BTC first and ETH second (bible §27.7)."""

_MORE_REAL_SYMBOLS: tuple[str, ...] = (
    "1000PEPEUSDT", "1000SHIBUSDT", "1000BONKUSDT", "1000FLOKIUSDT", "1000LUNCUSDT",
    "1000XECUSDT", "1000SATSUSDT", "1000RATSUSDT", "WIFUSDT", "TONUSDT",
    "SEIUSDT", "TIAUSDT", "JUPUSDT", "PYTHUSDT", "ORDIUSDT",
    "WLDUSDT", "FETUSDT", "RENDERUSDT", "TAOUSDT", "ENAUSDT",
    "ONDOUSDT", "PENDLEUSDT", "LDOUSDT", "STRKUSDT", "IMXUSDT",
    "GALAUSDT", "APEUSDT", "DYDXUSDT", "GMXUSDT", "BLURUSDT",
    "JTOUSDT", "ARKMUSDT", "AGLDUSDT", "1INCHUSDT", "ANKRUSDT",
    "API3USDT", "ARUSDT", "ARPAUSDT", "ASTRUSDT", "AXLUSDT",
    "BAKEUSDT", "BALUSDT", "BANDUSDT", "BATUSDT", "BELUSDT",
    "BICOUSDT", "BIGTIMEUSDT", "BNTUSDT", "BOMEUSDT", "BSVUSDT",
    "C98USDT", "CAKEUSDT", "CELOUSDT", "CELRUSDT", "CFXUSDT",
    "CHRUSDT", "CKBUSDT", "COTIUSDT", "CTSIUSDT", "CYBERUSDT",
    "DARUSDT", "DENTUSDT", "DUSKUSDT", "DYMUSDT", "EDUUSDT",
    "ENSUSDT", "ETHFIUSDT", "FLMUSDT", "FLOWUSDT", "FXSUSDT",
    "GASUSDT", "GLMUSDT", "GMTUSDT", "HFTUSDT", "HIGHUSDT",
    "HOOKUSDT", "HOTUSDT", "ICXUSDT", "IDUSDT", "ILVUSDT",
    "IOSTUSDT", "IOTXUSDT", "JASMYUSDT", "JOEUSDT", "KASUSDT",
    "KNCUSDT", "KSMUSDT", "LPTUSDT", "LQTYUSDT", "LRCUSDT",
    "MAGICUSDT", "MANTAUSDT", "MASKUSDT", "MAVUSDT", "MEMEUSDT",
    "METISUSDT", "MINAUSDT", "MOVRUSDT", "MTLUSDT", "NFPUSDT",
    "NKNUSDT", "NMRUSDT", "NOTUSDT", "NTRNUSDT", "OGNUSDT",
    "OMUSDT", "ONEUSDT", "ONGUSDT", "ONTUSDT", "PEOPLEUSDT",
    "PHBUSDT", "PIXELUSDT", "POLUSDT", "PORTALUSDT", "POWRUSDT",
    "QNTUSDT", "QTUMUSDT", "RDNTUSDT", "RLCUSDT", "ROSEUSDT",
    "RSRUSDT", "RVNUSDT", "SAGAUSDT", "SFPUSDT", "SKLUSDT",
    "SPELLUSDT", "SSVUSDT", "STEEMUSDT", "STGUSDT", "STORJUSDT",
    "SUPERUSDT", "SUSHIUSDT", "SXPUSDT", "SYNUSDT", "SYSUSDT",
    "TUSDT", "TLMUSDT", "TNSRUSDT", "TRBUSDT", "TRUUSDT",
    "TURBOUSDT", "TWTUSDT", "UMAUSDT", "USTCUSDT", "VANRYUSDT",
    "WUSDT", "WAXPUSDT", "WOOUSDT", "XAIUSDT", "XMRUSDT",
    "XVGUSDT", "XVSUSDT", "YFIUSDT", "YGGUSDT", "ZENUSDT",
    "ZETAUSDT", "ZILUSDT", "ZKUSDT", "ZROUSDT", "ZRXUSDT",
    "AEVOUSDT", "ALTUSDT", "ACEUSDT", "AIUSDT", "ACHUSDT",
    "ALICEUSDT", "AUCTIONUSDT", "BBUSDT", "BANANAUSDT", "COSUSDT",
    "DOGSUSDT", "EIGENUSDT", "HIFIUSDT", "IOUSDT", "LISTAUSDT",
    "LSKUSDT", "NEIROUSDT", "OMNIUSDT", "REZUSDT", "RIFUSDT",
    "RONINUSDT", "POPCATUSDT", "MEWUSDT", "1000CATUSDT", "HYPEUSDT",
    "TRUMPUSDT", "VIRTUALUSDT", "PENGUUSDT", "MOVEUSDT", "MEUSDT",
    "BERAUSDT", "IPUSDT", "KAITOUSDT", "LAYERUSDT", "ANIMEUSDT",
    "PNUTUSDT", "ACTUSDT", "GOATUSDT", "GRASSUSDT", "MORPHOUSDT",
    "USUALUSDT", "VANAUSDT", "BIOUSDT", "COOKIEUSDT", "SOLVUSDT",
    "AIXBTUSDT", "FARTCOINUSDT", "SUSDT", "EPICUSDT", "KMNOUSDT",
    "DRIFTUSDT", "CETUSUSDT", "SCRUSDT", "HMSTRUSDT", "CATIUSDT",
    "LUNA2USDT", "ZEREBROUSDT", "GRIFFAINUSDT", "CHILLGUYUSDT", "SWARMSUSDT",
    "SONICUSDT", "PROMUSDT", "DEGOUSDT", "LUMIAUSDT", "ORCAUSDT",
)
"""Further real Binance USD-M USDT perpetuals, after the priority block."""

_SYNTHETIC_PREFIX = "SYN"


def _synthetic_name(k: int) -> str:
    """The k-th (1-based) synthetic ticker: ``SYN001USDT`` … ``SYN999USDT``."""
    return f"{_SYNTHETIC_PREFIX}{k:03d}USDT"


def _build_universe() -> tuple[str, ...]:
    names = list(PRIORITY_SYMBOLS) + [s for s in _MORE_REAL_SYMBOLS if s not in PRIORITY_SYMBOLS]
    k = 1
    while len(names) < MAX_UNIVERSE:
        names.append(_synthetic_name(k))
        k += 1
    return tuple(names)


_UNIVERSE: tuple[str, ...] = _build_universe()


def universe(n: int) -> list[str]:
    """The first ``n`` symbols of the ordered universe (priority first, then real, then SYN*).

    Raises ``ValueError`` unless ``n`` is an integer with ``1 <= n <= 540``.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"universe size must be an integer, got {n!r}")
    if not 1 <= n <= MAX_UNIVERSE:
        raise ValueError(f"universe size must be between 1 and {MAX_UNIVERSE}, got {n}")
    return list(_UNIVERSE[:n])


def symbol_index(symbol: str) -> int:
    """Position of ``symbol`` in the ordered universe (its stable identity in the generator)."""
    try:
        return _UNIVERSE.index(symbol)
    except ValueError:
        raise ValueError(f"{symbol!r} is not in the {MAX_UNIVERSE}-symbol universe") from None


N_REAL_SYMBOLS = len(PRIORITY_SYMBOLS) + len([s for s in _MORE_REAL_SYMBOLS if s not in PRIORITY_SYMBOLS])
"""How many of the universe's names are real tickers (the rest are ``SYN*``)."""
