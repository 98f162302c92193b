"""The user-data stream: listen keys and the account events a live trader runs on.

Listen keys follow Binance's lifecycle: ``POST /fapi/v1/listenKey`` returns the account's
active key (creating one if there is none) and extends it; ``PUT`` extends it (-1125 if
there is none); ``DELETE`` closes it and the connections reading it. A key lives 60
minutes of **wall** time after its last keepalive (the keepalive is a protocol timer of
the client, not of the market, so ``--speed`` does not shorten it); when it lapses its
readers get ``listenKeyExpired`` and nothing more. The ``listenkey`` fault shortens the
lifetime.

Events (payloads as the live venue sends them):

* ``ORDER_TRADE_UPDATE`` — every state change of an order: NEW, TRADE (each fill, with
  commission ``n``/``N``, realised profit ``rp``, trade id ``t``, maker flag ``m``),
  CANCELED, EXPIRED, AMENDMENT; ``c`` is the client order id;
* ``TRADE_LITE`` — the short form of each fill;
* ``ACCOUNT_UPDATE`` — balances and the positions a change touched, with the reason ``m``
  (ORDER, FUNDING_FEE, MARGIN_TYPE_CHANGE, …);
* ``ALGO_UPDATE`` — every status of a conditional order (NEW, TRIGGERING, TRIGGERED,
  FINISHED, CANCELED, REJECTED);
* ``ACCOUNT_CONFIG_UPDATE`` — a leverage change;
* ``MARGIN_CALL`` — when maintenance margin nears the margin balance;
* ``listenKeyExpired``.

One account, so every event goes to every active key.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from dolphin.market.sim.account import AlgoRecord, ListenKeyRecord, OrderRecord, split_key
from dolphin.market.sim.wire import Params, err, f8, fnum

if TYPE_CHECKING:
    from dolphin.market.sim.exchange import Exchange

LISTEN_KEY_TTL_MS = 60 * 60_000
_ALPHABET = string.ascii_letters + string.digits


class FillInfo(NamedTuple):
    """One fill of an order, as the events report it."""

    trade_id: int
    price: float
    qty: float
    commission: float
    realized: float
    maker: bool


class UserData:
    """Listen keys of the account and the events published to their readers."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.publish: Callable[[str, str], None] | None = None
        """Set by the stream hub: deliver a payload to the readers of a listen key."""
        self.close_readers: Callable[[str], None] | None = None
        self.events = 0
        self.expired = 0
        self._wall = time.time

    # -- listen keys ---------------------------------------------------------------------

    @property
    def _keys(self) -> list[ListenKeyRecord]:
        return self.ex.state.listen_keys

    def _now_wall(self) -> int:
        return int(self._wall() * 1000)

    def ttl_ms(self) -> int:
        return self.ex.faults.setting("listenkey", "ttl_ms") or LISTEN_KEY_TTL_MS

    def is_active(self, key: str) -> bool:
        now = self._now_wall()
        return any(k.key == key and k.expires_ms > now for k in self._keys)

    def active(self) -> list[str]:
        now = self._now_wall()
        return [k.key for k in self._keys if k.expires_ms > now]

    def create(self, params: Params) -> dict[str, Any]:
        """``POST /fapi/v1/listenKey``: the active key, extended; a new one if there is none."""
        now = self._now_wall()
        for rec in self._keys:
            if rec.expires_ms > now:
                rec.expires_ms = now + self.ttl_ms()
                self.ex.save()
                return {"listenKey": rec.key}
        key = "".join(secrets.choice(_ALPHABET) for _ in range(64))
        self._keys.append(ListenKeyRecord(key, now + self.ttl_ms()))
        self.ex.save()
        return {"listenKey": key}

    def keepalive(self, params: Params) -> dict[str, Any]:
        """``PUT /fapi/v1/listenKey``: extend the active key by 60 minutes."""
        now = self._now_wall()
        wanted = params.get("listenKey")
        for rec in self._keys:
            if rec.expires_ms > now and (not wanted or rec.key == wanted):
                rec.expires_ms = now + self.ttl_ms()
                self.ex.save()
                return {"listenKey": rec.key}
        raise err(-1125, "This listenKey does not exist.")

    def close(self, params: Params) -> dict[str, Any]:
        """``DELETE /fapi/v1/listenKey``: invalidate the key and close its streams."""
        wanted = params.get("listenKey")
        gone = [k for k in self._keys if not wanted or k.key == wanted]
        for rec in gone:
            self._keys.remove(rec)
            if self.close_readers is not None:
                self.close_readers(rec.key)
        if gone:
            self.ex.save()
        return {}

    def expire_all(self) -> list[str]:
        """Fault injection: every key lapses now (its readers get ``listenKeyExpired``)."""
        for rec in self._keys:
            rec.expires_ms = 0
        return self.on_tick()

    def on_tick(self) -> list[str]:
        """Lapse keys whose time is up; returns the keys that expired."""
        now = self._now_wall()
        lapsed = [k for k in self._keys if k.expires_ms <= now]
        for rec in lapsed:
            self._keys.remove(rec)
            self.expired += 1
            if self.publish is not None:
                self.publish(rec.key, msgspec.json.encode(
                    {"e": "listenKeyExpired", "E": self.ex.now(), "listenKey": rec.key}).decode())
        if lapsed:
            self.ex.save()
        return [k.key for k in lapsed]

    # -- events --------------------------------------------------------------------------

    def _emit(self, payload: dict[str, Any]) -> None:
        keys = self.active()
        if not keys or self.publish is None:
            return
        text = msgspec.json.encode(payload).decode()
        for key in keys:
            self.publish(key, text)
        self.events += 1

    def wanted(self) -> bool:
        return self.publish is not None and bool(self.active())

    def order_update(self, rec: OrderRecord, exec_type: str, fill: FillInfo | None = None) -> None:
        if not self.wanted():
            return
        ex = self.ex
        now = ex.now()
        ins = ex.source.by_symbol[rec.symbol]
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        bids = sum(o.remaining * o.price for o in ex.ledger.open_orders(rec.symbol) if o.side == "BUY")
        asks = sum(o.remaining * o.price for o in ex.ledger.open_orders(rec.symbol) if o.side == "SELL")
        o: dict[str, Any] = {
            "s": rec.symbol, "c": rec.client_order_id, "S": rec.side, "o": rec.type, "f": rec.time_in_force,
            "q": fnum(rec.orig_qty, qd), "p": fnum(rec.price, d) if rec.type == "LIMIT" else "0",
            "ap": fnum(rec.avg_price, max(5, d)), "sp": fnum(rec.stop_price, d) if rec.stop_price else "0",
            "x": exec_type, "X": rec.status, "i": rec.order_id,
            "l": fnum(fill.qty, qd) if fill else "0", "z": fnum(rec.executed_qty, qd),
            "L": fnum(fill.price, d) if fill else "0"}
        if fill is not None:
            o["N"] = "USDT"
            o["n"] = f8(fill.commission)
        o.update({"T": now, "t": fill.trade_id if fill else 0, "b": f8(bids), "a": f8(asks),
                  "m": fill.maker if fill else False, "R": rec.reduce_only, "wt": rec.working_type,
                  "ot": rec.orig_type or rec.type, "ps": rec.position_side, "cp": rec.close_position,
                  "rp": f8(fill.realized) if fill else "0", "pP": rec.price_protect, "si": 0, "ss": 0,
                  "V": "NONE", "pm": "NONE", "gtd": 0})
        self._emit({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o})

    def trade_lite(self, rec: OrderRecord, fill: FillInfo) -> None:
        if not self.wanted():
            return
        ins = self.ex.source.by_symbol[rec.symbol]
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        now = self.ex.now()
        self._emit({"e": "TRADE_LITE", "E": now, "T": now, "s": rec.symbol, "q": fnum(rec.orig_qty, qd),
                    "p": fnum(rec.price, d) if rec.type == "LIMIT" else "0", "m": fill.maker,
                    "c": rec.client_order_id, "S": rec.side, "L": fnum(fill.price, d), "l": fnum(fill.qty, qd),
                    "t": fill.trade_id, "i": rec.order_id})

    def account_update(self, reason: str, keys: Iterable[str], balance_change: float = 0.0) -> None:
        if not self.wanted():
            return
        ex = self.ex
        now = ex.now()
        marks = ex.source.price_at(now)
        m = ex.ledger.margins({})
        positions = []
        for key in keys:
            symbol, ps = split_key(key)
            pos = ex.ledger.position(symbol, ps)
            ins = ex.source.by_symbol[symbol]
            mark = float(marks[ins.column])
            positions.append({
                "s": symbol, "pa": fnum(pos.amt, max(0, ins.qty_decimals)),
                "ep": fnum(pos.entry_price, max(5, ins.price_decimals)), "bep": fnum(_break_even(pos.amt,
                                                                                              pos.entry_price), 8),
                "cr": f8(pos.realized), "up": f8(pos.amt * (mark - pos.entry_price)),
                "mt": "isolated" if ex.ledger.isolated(symbol) else "cross", "iw": f8(pos.isolated_wallet),
                "ps": ps})
        self._emit({"e": "ACCOUNT_UPDATE", "E": now, "T": now,
                    "a": {"m": reason, "B": [{"a": "USDT", "wb": f8(m["wallet"]), "cw": f8(m["cross_wallet"]),
                                              "bc": f8(balance_change)}],
                          "P": positions}})

    def algo_update(self, algo: AlgoRecord) -> None:
        if not self.wanted():
            return
        ex = self.ex
        now = ex.now()
        ins = ex.source.by_symbol[algo.symbol]
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        child = next((o for o in reversed(ex.state.orders) if o.order_id == algo.actual_order_id), None) \
            if algo.actual_order_id else None
        self._emit({"e": "ALGO_UPDATE", "T": now, "E": now, "o": {
            "caid": algo.client_algo_id, "aid": algo.algo_id, "at": "CONDITIONAL", "o": algo.order_type,
            "s": algo.symbol, "S": algo.side, "ps": algo.position_side, "f": algo.time_in_force,
            "q": fnum(algo.quantity, qd), "X": algo.status, "ai": str(algo.actual_order_id or ""),
            "ap": fnum(child.avg_price if child else 0.0, 5), "aq": fnum(child.executed_qty if child else 0.0, 5),
            "act": child.type if child else "0", "tp": fnum(algo.trigger_price, d), "p": fnum(algo.price, d),
            "V": "EXPIRE_MAKER", "wt": algo.working_type, "pm": "NONE", "cp": algo.close_position,
            "pP": algo.price_protect, "R": algo.reduce_only, "tt": algo.trigger_time, "gtd": 0,
            "rm": algo.reject_reason}})

    def config_update(self, symbol: str, leverage: int) -> None:
        if not self.wanted():
            return
        now = self.ex.now()
        self._emit({"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ac": {"s": symbol, "l": leverage}})

    def margin_call(self, marks: dict[str, float], cross_wallet: float) -> None:
        if not self.wanted():
            return
        ex = self.ex
        rows = []
        for key, pos in ex.state.positions.items():
            if pos.amt == 0:
                continue
            symbol, ps = split_key(key)
            ins = ex.source.by_symbol[symbol]
            mark = marks[symbol]
            rows.append({"s": symbol, "ps": ps, "pa": fnum(pos.amt, max(0, ins.qty_decimals)),
                         "mt": "ISOLATED" if ex.ledger.isolated(symbol) else "CROSSED", "iw": f8(pos.isolated_wallet),
                         "mp": f8(mark), "up": f8(pos.amt * (mark - pos.entry_price)),
                         "mm": f8(abs(pos.amt) * mark * 0.004)})
        self._emit({"e": "MARGIN_CALL", "E": ex.now(), "cw": f8(cross_wallet), "p": rows})


def _break_even(amt: float, entry: float) -> float:
    from dolphin.market.sim.config import TAKER_FEE

    return entry * (1 + TAKER_FEE * (1 if amt > 0 else -1)) if amt else 0.0
