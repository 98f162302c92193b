"""The simulated futures account: wallet, one-way positions, orders, leverage — and its persistence.

One account per simulator (the configured API key), USDT-margined, cross margin,
one-way position mode. Money math follows Binance's definitions:

* a fill at price ``p`` of signed quantity ``q`` on a position ``(amt, entry)`` realises
  ``(p − entry) × closed × sign(amt)`` on the part that reduces it, and averages the
  entry price on the part that increases it (a flip closes, then opens the rest at ``p``);
* fees are ``notional × rate`` (taker 0.05 %, maker 0.02 %), charged to the wallet;
* funding at each 8 h boundary moves ``amt × mark × rate`` from longs to shorts;
* unrealised PnL is ``amt × (mark − entry)``; margin balance = wallet + unrealised PnL;
  initial margin = notional / leverage for positions and for the unfilled part of open
  orders; available balance = margin balance − initial margins.

With a state directory the account is written atomically (temp file, fsync, rename) on
every change and restored on start, so a simulator restart keeps the venue's truth for
the trader's reconciliation. Used client order ids are part of that truth.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import msgspec

from dolphin.market.errors import SimStartError, SimStateError
from dolphin.store.atomic import atomic_write_bytes

log = logging.getLogger("dolphin.market.sim")

STATE_FILE = "account.json"
LOCK_FILE = ".lock"
STATE_VERSION = 1
MAINT_MARGIN_RATE = 0.004
"""Maintenance margin rate (Binance's first bracket for majors); reported, not enforced."""


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

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed_qty if self.executed_qty > 0 else 0.0

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> float:
        return max(0.0, self.orig_qty - self.executed_qty)


class PositionRecord(msgspec.Struct):
    """A one-way position: signed amount and average entry price."""

    amt: float = 0.0
    entry_price: float = 0.0
    update_time: int = 0


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
        if state.version != STATE_VERSION:
            raise SimStateError(f"{path}: state version {state.version} is not {STATE_VERSION}")
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


class Ledger:
    """The account's money math over an `AccountState` (no I/O, no clock)."""

    def __init__(self, state: AccountState, qty_decimals: dict[str, int], default_leverage: int) -> None:
        self.state = state
        self.qty_decimals = qty_decimals
        self.default_leverage = default_leverage

    def leverage(self, symbol: str) -> int:
        return self.state.leverage.get(symbol, self.default_leverage)

    def position(self, symbol: str) -> PositionRecord:
        return self.state.positions.get(symbol) or PositionRecord()

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        return [o for o in self.state.orders if o.is_open and (symbol is None or o.symbol == symbol)]

    def fill(self, symbol: str, side: str, qty: float, price: float, fee_rate: float, t_ms: int) -> float:
        """Apply a fill to the position and wallet; returns the realised PnL (before fees)."""
        st = self.state
        pos = self.position(symbol)
        signed = qty if side == "BUY" else -qty
        amt, entry = pos.amt, pos.entry_price
        realized = 0.0
        if amt == 0 or (amt > 0) == (signed > 0):
            new_amt = amt + signed
            entry = (abs(amt) * entry + abs(signed) * price) / abs(new_amt)
        else:
            closed = min(abs(amt), abs(signed))
            realized = (price - entry) * closed * (1.0 if amt > 0 else -1.0)
            new_amt = amt + signed
            if new_amt == 0 or (new_amt > 0) != (amt > 0):
                entry = price if new_amt != 0 else 0.0
        decimals = self.qty_decimals.get(symbol, 8)
        new_amt = round_to(new_amt, decimals)
        if new_amt == 0:
            entry = 0.0
        fee = qty * price * fee_rate
        st.positions[symbol] = PositionRecord(new_amt, entry, t_ms)
        st.wallet_balance += realized - fee
        st.realized_pnl += realized
        st.fees_paid += fee
        st.update_time = t_ms
        return realized

    def fund(self, rates: dict[str, float], marks: dict[str, float], t_ms: int) -> float:
        """Settle funding for every open position; returns the total paid by the account."""
        paid = 0.0
        for symbol, pos in self.state.positions.items():
            if pos.amt == 0 or symbol not in rates:
                continue
            paid += pos.amt * marks[symbol] * rates[symbol]
        self.state.wallet_balance -= paid
        self.state.funding_paid += paid
        self.state.last_funding_ms = t_ms
        if paid:
            self.state.update_time = t_ms
        return paid

    def margins(self, marks: dict[str, float]) -> dict[str, float]:
        """Account totals at ``marks``: wallet, unrealised, margin balance, initial/maint margins, available."""
        upnl = pos_im = maint = 0.0
        for symbol, pos in self.state.positions.items():
            if pos.amt == 0:
                continue
            mark = marks.get(symbol, pos.entry_price)
            upnl += pos.amt * (mark - pos.entry_price)
            notional = abs(pos.amt) * mark
            pos_im += notional / self.leverage(symbol)
            maint += notional * MAINT_MARGIN_RATE
        order_im = sum(o.remaining * o.price / self.leverage(o.symbol) for o in self.open_orders())
        wallet = self.state.wallet_balance
        balance = wallet + upnl
        return {"wallet": wallet, "unrealized": upnl, "margin_balance": balance, "position_im": pos_im,
                "order_im": order_im, "initial_margin": pos_im + order_im, "maint_margin": maint,
                "available": balance - pos_im - order_im}
