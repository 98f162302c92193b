"""The simulated futures account: wallet, positions, orders, fills, income — and its persistence.

One account per simulator (the configured API key), USDT-margined. Positions are one-way
(``BOTH``) by default or hedged (``LONG``/``SHORT``) after ``positionSide/dual``; each
symbol is cross or isolated margin. Money math follows Binance's definitions:

* a fill at price ``p`` of signed quantity ``q`` on a position ``(amt, entry)`` realises
  ``(p − entry) × closed × sign(amt)`` on the part that reduces it, and averages the
  entry price on the part that increases it (a one-way flip closes, then opens the rest
  at ``p``);
* fees are ``notional × rate`` (taker 0.05 %, maker 0.02 %), charged to the wallet;
* funding at each 8 h boundary moves ``amt × mark × rate`` from longs to shorts;
* unrealised PnL is ``amt × (mark − entry)``; margin balance = wallet + unrealised PnL;
  initial margin = notional / leverage for positions and for the unfilled part of open
  orders; available balance = cross wallet + cross unrealised PnL − cross initial margins;
* an isolated position holds its own margin (``isolated_wallet``): what an increase
  needs (notional / leverage) moves out of the cross wallet, a reduction releases its
  share; realised PnL and fees settle in the total wallet.

With a state directory the account is written atomically (temp file, fsync, rename) on
every change and restored on start, so a simulator restart keeps the venue's truth for
the trader's reconciliation. Used client order ids, fills and income are part of that
truth.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dolphin.market.errors import SimStartError, SimStateError
from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.market.sim")

STATE_FILE = "account.json"
LOCK_FILE = ".lock"
STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAINT_MARGIN_RATE = 0.004
"""Maintenance margin rate (Binance's first bracket for majors), one rate for every bracket."""
HISTORY_LIMIT = 10_000
"""Fills, income records and finished orders kept, each (oldest dropped first); open orders are always kept.
The whole state is rewritten on every change, so history is bounded to keep that write small."""


class OrderRecord(msgspec.Struct):
    """An order the venue knows (open or finished)."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: float
    orig_qty: float
    reduce_only: bool
    time: int
    update_time: int
    status: str = "NEW"
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    orig_type: str = ""
    stop_price: float = 0.0
    close_position: bool = False
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    position_side: str = "BOTH"
    partial_ratio: float = 0.0
    """Fault injection: the share of what is fillable that fills now (0 = all)."""
    pending_at: int = 0
    """Fault injection: a MARKET remainder fills at this simulated time (0 = nothing pending)."""

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed_qty if self.executed_qty > 0 else 0.0

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> float:
        return max(0.0, self.orig_qty - self.executed_qty)


class AlgoRecord(msgspec.Struct):
    """A conditional order held by the algo service until its trigger price is reached."""

    algo_id: int
    client_algo_id: str
    order_type: str
    symbol: str
    side: str
    position_side: str
    time_in_force: str
    quantity: float
    price: float
    trigger_price: float
    working_type: str
    close_position: bool
    price_protect: bool
    reduce_only: bool
    create_time: int
    update_time: int
    status: str = "NEW"
    trigger_time: int = 0
    actual_order_id: int = 0
    reject_reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "TRIGGERING")


class PositionRecord(msgspec.Struct):
    """A position: signed amount, average entry price, and its isolated margin if isolated."""

    amt: float = 0.0
    entry_price: float = 0.0
    update_time: int = 0
    isolated_wallet: float = 0.0
    realized: float = 0.0
    """Accumulated realised PnL (pre-fee) of this position, ``cr`` in ACCOUNT_UPDATE."""


class TradeRecord(msgspec.Struct):
    """One fill of one of our orders (``/fapi/v1/userTrades``)."""

    id: int
    order_id: int
    symbol: str
    side: str
    position_side: str
    price: float
    qty: float
    commission: float
    realized_pnl: float
    maker: bool
    time: int


class IncomeRecord(msgspec.Struct):
    """A wallet movement (``/fapi/v1/income``): REALIZED_PNL, COMMISSION, FUNDING_FEE, TRANSFER."""

    tran_id: int
    symbol: str
    income_type: str
    income: float
    time: int
    trade_id: int = 0
    info: str = ""


class ListenKeyRecord(msgspec.Struct):
    """A user-data stream key and when (simulated ms) it expires unless kept alive."""

    key: str
    expires_ms: int


class AccountState(msgspec.Struct):
    """Everything persisted about the account."""

    version: int
    wallet_balance: float
    next_order_id: int
    last_funding_ms: int
    positions: dict[str, PositionRecord] = msgspec.field(default_factory=dict)
    leverage: dict[str, int] = msgspec.field(default_factory=dict)
    orders: list[OrderRecord] = msgspec.field(default_factory=list)
    used_client_ids: list[str] = msgspec.field(default_factory=list)
    realized_pnl: float = 0.0
    fees_paid: float = 0.0
    funding_paid: float = 0.0
    update_time: int = 0
    margin_type: dict[str, str] = msgspec.field(default_factory=dict)
    dual_side: bool = False
    algo_orders: list[AlgoRecord] = msgspec.field(default_factory=list)
    next_algo_id: int = 1
    trades: list[TradeRecord] = msgspec.field(default_factory=list)
    next_trade_id: int = 1
    income: list[IncomeRecord] = msgspec.field(default_factory=list)
    next_tran_id: int = 1
    listen_keys: list[ListenKeyRecord] = msgspec.field(default_factory=list)
    countdowns: dict[str, int] = msgspec.field(default_factory=dict)
    """Auto-cancel-all deadlines (simulated ms) per symbol (``countdownCancelAll``)."""


def position_key(symbol: str, position_side: str = "BOTH") -> str:
    """Key of a position in `AccountState.positions`: the symbol (one-way) or ``SYMBOL:LONG``."""
    return symbol if position_side == "BOTH" else f"{symbol}:{position_side}"


def split_key(key: str) -> tuple[str, str]:
    """(symbol, position side) of a position key."""
    symbol, _, side = key.partition(":")
    return symbol, side or "BOTH"


class AccountStore:
    """Loads, locks and atomically saves the account state of a state directory."""

    def __init__(self, state_dir: Path | None) -> None:
        self.dir = state_dir.expanduser().resolve() if state_dir is not None else None
        self._lock_fd: int | None = None

    @property
    def path(self) -> Path | None:
        return None if self.dir is None else self.dir / STATE_FILE

    def lock(self) -> None:
        """Take the directory's lock: two simulators must never write one account."""
        if self.dir is None:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SimStartError(f"cannot use state directory {self.dir}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SimStartError(f"state directory {self.dir} is in use by another simulator") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def load(self) -> AccountState | None:
        """The saved state, None if there is none; SimStateError if it cannot be read."""
        path = self.path
        if path is None or not path.is_file():
            return None
        try:
            state = msgspec.json.decode(path.read_bytes(), type=AccountState)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SimStateError(f"{path}: cannot read the simulator account state: {exc}") from None
        if state.version not in READABLE_VERSIONS:
            raise SimStateError(f"{path}: state version {state.version} is not one of {READABLE_VERSIONS}")
        state.version = STATE_VERSION
        return state

    def save(self, state: AccountState) -> None:
        if self.path is not None:
            atomic_write_bytes(self.path, msgspec.json.encode(state))


def round_to(value: float, decimals: int) -> float:
    """``value`` as the nearest double to a ``decimals``-place decimal (negative: tens, hundreds…)."""
    if decimals >= 0:
        scale = float(10**decimals)
        return round(value * scale) / scale
    scale = float(10 ** (-decimals))
    return round(value / scale) * scale


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill did to the account."""

    realized: float
    fee: float
    key: str


class Ledger:
    """The account's money math over an `AccountState` (no I/O, no clock)."""

    def __init__(self, state: AccountState, qty_decimals: dict[str, int], default_leverage: int) -> None:
        self.state = state
        self.qty_decimals = qty_decimals
        self.default_leverage = default_leverage

    def leverage(self, symbol: str) -> int:
        return self.state.leverage.get(symbol, self.default_leverage)

    def isolated(self, symbol: str) -> bool:
        return self.state.margin_type.get(symbol, "CROSSED") == "ISOLATED"

    def position(self, symbol: str, position_side: str = "BOTH") -> PositionRecord:
        return self.state.positions.get(position_key(symbol, position_side)) or PositionRecord()

    def position_sides(self) -> tuple[str, ...]:
        """The position sides of the account's mode: ("BOTH",) one-way, ("LONG", "SHORT") hedged."""
        return ("LONG", "SHORT") if self.state.dual_side else ("BOTH",)

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        return [o for o in self.state.orders if o.is_open and (symbol is None or o.symbol == symbol)]

    def open_algos(self, symbol: str | None = None) -> list[AlgoRecord]:
        return [a for a in self.state.algo_orders if a.is_open and (symbol is None or a.symbol == symbol)]

    def has_position(self, symbol: str) -> bool:
        return any(self.position(symbol, ps).amt != 0 for ps in ("BOTH", "LONG", "SHORT"))

    def fill(self, symbol: str, side: str, qty: float, price: float, fee_rate: float, t_ms: int,
             position_side: str = "BOTH") -> float:
        """Apply a fill to the position and wallet; returns the realised PnL (before fees)."""
        return self.apply_fill(symbol, side, qty, price, fee_rate, t_ms, position_side).realized

    def apply_fill(self, symbol: str, side: str, qty: float, price: float, fee_rate: float, t_ms: int,
                   position_side: str = "BOTH") -> FillEffect:
        """Apply a fill; hedged positions only grow on their own side's opening fills."""
        st = self.state
        key = position_key(symbol, position_side)
        pos = st.positions.get(key) or PositionRecord()
        signed = qty if side == "BUY" else -qty  # hedged SHORT amounts are negative too
        amt, entry = pos.amt, pos.entry_price
        realized = 0.0
        iso = pos.isolated_wallet
        lev = self.leverage(symbol)
        if amt == 0 or (amt > 0) == (signed > 0):
            new_amt = amt + signed
            entry = (abs(amt) * entry + abs(signed) * price) / abs(new_amt)
            if self.isolated(symbol):
                iso += abs(signed) * price / lev
        else:
            closed = min(abs(amt), abs(signed))
            realized = (price - entry) * closed * (1.0 if amt > 0 else -1.0)
            if iso:
                iso -= iso * closed / abs(amt)
            new_amt = amt + signed
            if new_amt == 0 or (new_amt > 0) != (amt > 0):
                entry = price if new_amt != 0 else 0.0
                if new_amt != 0 and self.isolated(symbol):
                    iso = abs(new_amt) * price / lev
        decimals = self.qty_decimals.get(symbol, 8)
        new_amt = round_to(new_amt, decimals)
        if new_amt == 0:
            entry = 0.0
            iso = 0.0
        fee = qty * price * fee_rate
        st.positions[key] = PositionRecord(new_amt, entry, t_ms, max(0.0, iso), pos.realized + realized)
        st.wallet_balance += realized - fee
        st.realized_pnl += realized
        st.fees_paid += fee
        st.update_time = t_ms
        return FillEffect(realized, fee, key)

    def fund(self, rates: dict[str, float], marks: dict[str, float], t_ms: int) -> float:
        """Settle funding for every open position; returns the total paid by the account."""
        return sum(self.fund_by_symbol(rates, marks, t_ms).values())

    def fund_by_symbol(self, rates: dict[str, float], marks: dict[str, float], t_ms: int) -> dict[str, float]:
        """Settle funding; returns what the account paid per symbol (negative: received)."""
        paid: dict[str, float] = {}
        for key, pos in self.state.positions.items():
            symbol, _ = split_key(key)
            if pos.amt == 0 or symbol not in rates:
                continue
            paid[symbol] = paid.get(symbol, 0.0) + pos.amt * marks[symbol] * rates[symbol]
        total = sum(paid.values())
        self.state.wallet_balance -= total
        self.state.funding_paid += total
        self.state.last_funding_ms = t_ms
        if total:
            self.state.update_time = t_ms
        return paid

    def margins(self, marks: dict[str, float]) -> dict[str, float]:
        """Account totals at ``marks``: wallet, unrealised, margin balance, initial/maint margins, available."""
        upnl = cross_upnl = pos_im = maint = isolated_wallets = 0.0
        for key, pos in self.state.positions.items():
            if pos.amt == 0:
                continue
            symbol, _ = split_key(key)
            mark = marks.get(symbol, pos.entry_price)
            pnl = pos.amt * (mark - pos.entry_price)
            upnl += pnl
            notional = abs(pos.amt) * mark
            maint += notional * MAINT_MARGIN_RATE
            if self.isolated(symbol):
                isolated_wallets += pos.isolated_wallet
                pos_im += pos.isolated_wallet
            else:
                cross_upnl += pnl
                pos_im += notional / self.leverage(symbol)
        order_im = sum(o.remaining * o.price / self.leverage(o.symbol) for o in self.open_orders())
        wallet = self.state.wallet_balance
        balance = wallet + upnl
        cross_wallet = wallet - isolated_wallets
        cross_im = pos_im - isolated_wallets
        return {"wallet": wallet, "unrealized": upnl, "margin_balance": balance, "position_im": pos_im,
                "order_im": order_im, "initial_margin": pos_im + order_im, "maint_margin": maint,
                "available": cross_wallet + cross_upnl - cross_im - order_im, "cross_wallet": cross_wallet,
                "cross_unrealized": cross_upnl}

    # -- history -------------------------------------------------------------------------

    def prune_orders(self) -> None:
        """Forget the oldest finished orders beyond `HISTORY_LIMIT` (open ones always stay)."""
        orders = self.state.orders
        finished = len(orders) - sum(1 for o in orders if o.is_open)
        if finished > HISTORY_LIMIT + HISTORY_LIMIT // 10:
            drop = finished - HISTORY_LIMIT
            kept = []
            for o in orders:
                if drop and not o.is_open:
                    drop -= 1
                    continue
                kept.append(o)
            self.state.orders = kept

    def record_trade(self, rec: TradeRecord) -> None:
        self.state.trades.append(rec)
        if len(self.state.trades) > HISTORY_LIMIT:
            del self.state.trades[: len(self.state.trades) - HISTORY_LIMIT]

    def record_income(self, symbol: str, income_type: str, amount: float, t_ms: int, trade_id: int = 0,
                      info: str = "") -> IncomeRecord:
        st = self.state
        rec = IncomeRecord(st.next_tran_id, symbol, income_type, amount, t_ms, trade_id, info or income_type)
        st.next_tran_id += 1
        st.income.append(rec)
        if len(st.income) > HISTORY_LIMIT:
            del st.income[: len(st.income) - HISTORY_LIMIT]
        return rec
