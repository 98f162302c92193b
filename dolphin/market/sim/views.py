"""Account endpoints: balances, positions, fills, income, and the account's settings.

``/fapi/v2|v3/account``, ``/fapi/v2|v3/positionRisk``, ``/fapi/v2|v3/balance``,
``/fapi/v1/userTrades``, ``/fapi/v1/income``, ``/fapi/v1/leverageBracket``,
``/fapi/v1/commissionRate``, ``/fapi/v1/symbolConfig``, ``/fapi/v1/accountConfig``,
``/fapi/v1/multiAssetsMargin``, ``/fapi/v1/forceOrders`` — and the settings a bot
changes: leverage, margin type (cross/isolated) and position mode (one-way/hedge), with
Binance's refusals when there is nothing to change or open orders/positions forbid it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dolphin.market.sim.account import MAINT_MARGIN_RATE, split_key
from dolphin.market.sim.config import MAKER_FEE, TAKER_FEE
from dolphin.market.sim.source import Instrument
from dolphin.market.sim.wire import (
    LEVERAGE_TIERS,
    Params,
    err,
    f8,
    fnum,
    int_param,
    invalid,
    limit_param,
    mandatory,
    max_notional,
)

if TYPE_CHECKING:
    from dolphin.market.sim.exchange import Exchange

DAY_MS = 86_400_000
INCOME_TYPES = ("TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR",
                "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE", "CONTEST_REWARD", "CROSS_COLLATERAL_TRANSFER",
                "OPTIONS_PREMIUM_FEE", "OPTIONS_SETTLE_PROFIT", "INTERNAL_TRANSFER", "AUTO_EXCHANGE",
                "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW", "POSITION_LIMIT_INCREASE_FEE")
SUCCESS = {"code": 200, "msg": "success"}


class Views:
    """Account endpoints over an `Exchange`."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex

    def _rows(self) -> list[tuple[Instrument, str, float, float, int, float, float]]:
        """(instrument, position side, amount, entry, leverage, mark, isolated wallet) of every position row."""
        ex = self.ex
        prices = ex.source.price_at(ex.now())
        out = []
        for ins in ex.source.instruments:
            for ps in ex.ledger.position_sides():
                pos = ex.ledger.position(ins.symbol, ps)
                out.append((ins, ps, pos.amt, pos.entry_price, ex.ledger.leverage(ins.symbol),
                            float(prices[ins.column]), pos.isolated_wallet))
        return out

    def _order_im(self, symbol: str) -> float:
        ex = self.ex
        lev = ex.ledger.leverage(symbol)
        return sum(o.remaining * o.price / lev for o in ex.ledger.open_orders(symbol))

    def account(self, version: int = 2) -> dict[str, Any]:
        ex = self.ex
        m = ex.ledger.margins(ex.marks(ex.now()))
        asset = {"asset": "USDT", "walletBalance": f8(m["wallet"]), "unrealizedProfit": f8(m["unrealized"]),
                 "marginBalance": f8(m["margin_balance"]), "maintMargin": f8(m["maint_margin"]),
                 "initialMargin": f8(m["initial_margin"]), "positionInitialMargin": f8(m["position_im"]),
                 "openOrderInitialMargin": f8(m["order_im"]), "crossWalletBalance": f8(m["cross_wallet"]),
                 "crossUnPnl": f8(m["cross_unrealized"]), "availableBalance": f8(m["available"]),
                 "maxWithdrawAmount": f8(max(0.0, m["available"])), "updateTime": ex.state.update_time}
        if version == 2:
            asset["marginAvailable"] = True
        totals = {"totalInitialMargin": f8(m["initial_margin"]), "totalMaintMargin": f8(m["maint_margin"]),
                  "totalWalletBalance": f8(m["wallet"]), "totalUnrealizedProfit": f8(m["unrealized"]),
                  "totalMarginBalance": f8(m["margin_balance"]), "totalPositionInitialMargin": f8(m["position_im"]),
                  "totalOpenOrderInitialMargin": f8(m["order_im"]), "totalCrossWalletBalance": f8(m["cross_wallet"]),
                  "totalCrossUnPnl": f8(m["cross_unrealized"]), "availableBalance": f8(m["available"]),
                  "maxWithdrawAmount": f8(max(0.0, m["available"]))}
        positions = []
        for ins, ps, amt, entry, lev, mark, iso in self._rows():
            qd = max(0, ins.qty_decimals)
            notional = amt * mark
            isolated = ex.ledger.isolated(ins.symbol)
            im = iso if isolated else abs(notional) / lev
            order_im = self._order_im(ins.symbol)
            upd = ex.ledger.position(ins.symbol, ps).update_time
            if version == 2:
                positions.append({
                    "symbol": ins.symbol, "initialMargin": f8(im + order_im), "maintMargin": f8(abs(notional) * 0.004),
                    "unrealizedProfit": f8(amt * (mark - entry)), "positionInitialMargin": f8(im),
                    "openOrderInitialMargin": f8(order_im), "leverage": str(lev), "isolated": isolated,
                    "entryPrice": fnum(entry, max(5, ins.price_decimals)),
                    "breakEvenPrice": fnum(_break_even(amt, entry), max(5, ins.price_decimals)),
                    "maxNotional": fnum(max_notional(lev), 0), "bidNotional": "0", "askNotional": "0",
                    "positionSide": ps, "positionAmt": fnum(amt, qd), "updateTime": upd})
            elif amt != 0:
                positions.append({
                    "symbol": ins.symbol, "positionSide": ps, "positionAmt": fnum(amt, qd),
                    "unrealizedProfit": f8(amt * (mark - entry)), "isolatedMargin": f8(iso + amt * (mark - entry)
                                                                                       if isolated else 0.0),
                    "notional": f8(notional), "isolatedWallet": f8(iso) if isolated else "0",
                    "initialMargin": f8(im), "maintMargin": f8(abs(notional) * 0.004), "updateTime": upd})
        if version == 2:
            head = {"feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                    "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}
            return {**head, **totals, "assets": [asset], "positions": positions}
        return {**totals, "assets": [asset], "positions": positions}

    def position_risk(self, params: Params, version: int = 2) -> list[dict[str, Any]]:
        ex = self.ex
        ins_filter = ex.instrument(params, required=False)
        out = []
        for ins, ps, amt, entry, lev, mark, iso in self._rows():
            if ins_filter is not None and ins.symbol != ins_filter.symbol:
                continue
            if version == 3 and amt == 0:
                continue
            qd = max(0, ins.qty_decimals)
            notional = amt * mark
            isolated = ex.ledger.isolated(ins.symbol)
            upnl = amt * (mark - entry)
            upd = ex.ledger.position(ins.symbol, ps).update_time
            base = {"symbol": ins.symbol, "positionSide": ps, "positionAmt": fnum(amt, qd),
                    "entryPrice": fnum(entry, max(5, ins.price_decimals)),
                    "breakEvenPrice": fnum(_break_even(amt, entry), max(5, ins.price_decimals)),
                    "markPrice": fnum(mark, 8), "unRealizedProfit": f8(upnl),
                    "liquidationPrice": fnum(self._liquidation_price(ins, amt, entry, iso, isolated), 8)
                    if amt else "0",
                    "isolatedMargin": f8(iso + upnl if isolated else 0.0), "notional": f8(notional),
                    "isolatedWallet": f8(iso) if isolated else "0", "updateTime": upd}
            if version == 2:
                base.update({"leverage": str(lev), "maxNotionalValue": fnum(max_notional(lev), 0),
                             "marginType": "isolated" if isolated else "cross",
                             "isAutoAddMargin": "false"})
            else:
                im = iso if isolated else abs(notional) / lev
                base.update({"marginAsset": "USDT", "initialMargin": f8(im),
                             "maintMargin": f8(abs(notional) * 0.004), "positionInitialMargin": f8(im),
                             "openOrderInitialMargin": f8(self._order_im(ins.symbol)), "adl": 0,
                             "bidNotional": "0", "askNotional": "0"})
            out.append(base)
        return out

    def _liquidation_price(self, ins: Instrument, amt: float, entry: float, iso: float, isolated: bool) -> float:
        """Where margin would equal maintenance margin, other positions held at their marks."""
        ex = self.ex
        if isolated:
            margin = iso
        else:
            m = ex.ledger.margins(ex.marks(ex.now()))
            own = amt * (ex.mark_of(ins, ex.now()) - entry)
            margin = m["cross_wallet"] + m["cross_unrealized"] - own
        # margin + amt (p − entry) = |amt| p mmr  →  p = (amt·entry − margin) / (amt − |amt|·mmr)
        denom = amt - abs(amt) * MAINT_MARGIN_RATE
        price = (amt * entry - margin) / denom if denom else 0.0
        return max(0.0, price)

    def balance(self, params: Params) -> list[dict[str, Any]]:
        ex = self.ex
        m = ex.ledger.margins(ex.marks(ex.now()))
        return [{"accountAlias": "SimuLated", "asset": "USDT", "balance": f8(m["wallet"]),
                 "crossWalletBalance": f8(m["cross_wallet"]), "crossUnPnl": f8(m["cross_unrealized"]),
                 "availableBalance": f8(m["available"]), "maxWithdrawAmount": f8(max(0.0, m["available"])),
                 "marginAvailable": True, "updateTime": ex.state.update_time}]

    # -- settings ------------------------------------------------------------------------

    def change_leverage(self, params: Params) -> dict[str, Any]:
        ex = self.ex
        ins = ex.require_instrument(params)
        lev = int_param(params, "leverage")
        if lev is None:
            raise mandatory("leverage")
        if not 1 <= lev <= 125:
            raise err(-4028, f"Leverage {lev} is not valid")
        held = sum(abs(ex.ledger.position(ins.symbol, ps).amt) for ps in ("BOTH", "LONG", "SHORT"))
        if held * ex.mark_of(ins, ex.now()) > max_notional(lev):
            raise err(-2027, "Exceeded the maximum allowable position at current leverage.")
        ex.state.leverage[ins.symbol] = lev
        ex.state.update_time = ex.now()
        ex.save()
        ex.userdata.config_update(ins.symbol, lev)
        return {"leverage": lev, "maxNotionalValue": fnum(max_notional(lev), 0), "symbol": ins.symbol}

    def change_margin_type(self, params: Params) -> dict[str, Any]:
        ex = self.ex
        ins = ex.require_instrument(params)
        wanted = (params.get("marginType") or "").upper()
        if not wanted:
            raise mandatory("marginType")
        if wanted not in ("ISOLATED", "CROSSED"):
            raise invalid("marginType")
        if (wanted == "ISOLATED") == ex.ledger.isolated(ins.symbol):
            raise err(-4046, "No need to change margin type.")
        if ex.ledger.open_orders(ins.symbol):
            raise err(-4047, "Margin type cannot be changed if there exists open orders.")
        if ex.ledger.has_position(ins.symbol):
            raise err(-4048, "Margin type cannot be changed if there exists position.")
        ex.state.margin_type[ins.symbol] = wanted
        ex.state.update_time = ex.now()
        ex.save()
        return dict(SUCCESS)

    def position_mode(self, params: Params) -> dict[str, Any]:
        return {"dualSidePosition": self.ex.state.dual_side}

    def change_position_mode(self, params: Params) -> dict[str, Any]:
        ex = self.ex
        value = (params.get("dualSidePosition") or "").lower()
        if not value:
            raise mandatory("dualSidePosition")
        if value not in ("true", "false"):
            raise invalid("dualSidePosition")
        dual = value == "true"
        if dual == ex.state.dual_side:
            raise err(-4059, "No need to change position side.")
        if ex.ledger.open_orders() or ex.ledger.open_algos():
            raise err(-4067, "Position side cannot be changed if there exists open orders.")
        if any(p.amt for p in ex.state.positions.values()):
            raise err(-4068, "Position side cannot be changed if there exists position.")
        ex.state.dual_side = dual
        ex.state.update_time = ex.now()
        ex.save()
        return dict(SUCCESS)

    def multi_assets(self, params: Params) -> dict[str, Any]:
        return {"multiAssetsMargin": False}

    def account_config(self, params: Params) -> dict[str, Any]:
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                "dualSidePosition": self.ex.state.dual_side, "updateTime": 0, "multiAssetsMargin": False,
                "tradeGroupId": -1}

    def symbol_config(self, params: Params) -> list[dict[str, Any]]:
        ex = self.ex
        ins = ex.instrument(params, required=False)
        out = []
        for i in ([ins] if ins is not None else ex.source.instruments):
            lev = ex.ledger.leverage(i.symbol)
            out.append({"symbol": i.symbol, "marginType": "ISOLATED" if ex.ledger.isolated(i.symbol) else "CROSSED",
                        "isAutoAddMargin": "false", "leverage": lev, "maxNotionalValue": fnum(max_notional(lev), 0)})
        return out

    def leverage_bracket(self, params: Params) -> list[dict[str, Any]]:
        """One bracket table for every symbol: cap 31.25 M / leverage, flat 0.4 % maintenance margin."""
        ex = self.ex
        ins = ex.instrument(params, required=False)
        brackets = []
        floor = 0
        for n, lev in enumerate(LEVERAGE_TIERS, start=1):
            cap = int(max_notional(lev))
            brackets.append({"bracket": n, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
                             "maintMarginRatio": MAINT_MARGIN_RATE, "cum": 0.0})
            floor = cap
        return [{"symbol": i.symbol, "notionalCoef": 1.0, "brackets": brackets}
                for i in ([ins] if ins is not None else ex.source.instruments)]

    def commission_rate(self, params: Params) -> dict[str, Any]:
        ins = self.ex.require_instrument(params)
        return {"symbol": ins.symbol, "makerCommissionRate": f"{MAKER_FEE:.6f}",
                "takerCommissionRate": f"{TAKER_FEE:.6f}"}

    def order_rate_limit(self, params: Params) -> list[dict[str, Any]]:
        return [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}]

    def wallet_coins(self, params: Params) -> list[dict[str, Any]]:
        """``GET /sapi/v1/capital/config/getall`` — Binance's *spot wallet* coin list.

        Not a USD-M endpoint: served because ccxt's ``load_markets`` asks for it whenever
        credentials are set. USDT holds the futures wallet; no deposits or withdrawals.
        """
        ex = self.ex
        wallet = f8(ex.state.wallet_balance)
        coins = ["USDT"] + sorted({i.base_asset for i in ex.source.instruments} - {"USDT"})
        return [{"coin": c, "depositAllEnable": False, "withdrawAllEnable": False, "name": c,
                 "free": wallet if c == "USDT" else "0", "locked": "0", "freeze": "0", "withdrawing": "0",
                 "ipoing": "0", "ipoable": "0", "storage": "0", "isLegalMoney": False, "trading": True,
                 "networkList": []} for c in coins]

    # -- history -------------------------------------------------------------------------

    @staticmethod
    def _window(params: Params, now: int) -> tuple[int | None, int | None]:
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        if start is not None and end is not None:
            if start > end:
                raise err(-1023, "Start time is greater than end time.")
            if end - start > 7 * DAY_MS:
                raise err(-1023, "The time between startTime and endTime can't be longer than 7 days.")
        return start, end

    def user_trades(self, params: Params) -> list[dict[str, Any]]:
        """``GET /fapi/v1/userTrades``: the account's fills of a symbol (by order, from an id, or in a window)."""
        ex = self.ex
        ins = ex.require_instrument(params)
        limit = limit_param(params, 500, 1000)
        start, end = self._window(params, ex.now())
        order_id, from_id = int_param(params, "orderId"), int_param(params, "fromId")
        if from_id is not None and (start is not None or end is not None):
            raise err(-4133, "fromId cannot be sent with startTime or endTime.")
        rows = [t for t in ex.state.trades if t.symbol == ins.symbol
                and (order_id is None or t.order_id == order_id) and (from_id is None or t.id >= from_id)
                and (start is None or t.time >= start) and (end is None or t.time <= end)]
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        d, qd = ins.price_decimals, max(0, ins.qty_decimals)
        return [{"buyer": t.side == "BUY", "commission": f8(t.commission), "commissionAsset": "USDT", "id": t.id,
                 "maker": t.maker, "orderId": t.order_id, "price": fnum(t.price, d), "qty": fnum(t.qty, qd),
                 "quoteQty": f8(t.price * t.qty), "realizedPnl": f8(t.realized_pnl), "side": t.side,
                 "positionSide": t.position_side, "symbol": t.symbol, "time": t.time} for t in rows]

    def income(self, params: Params) -> list[dict[str, Any]]:
        """``GET /fapi/v1/income``: wallet movements, newest last; the last 7 days unless a window is given."""
        ex = self.ex
        ins = ex.instrument(params, required=False)
        kind = (params.get("incomeType") or "").upper()
        if kind and kind not in INCOME_TYPES:
            raise invalid("incomeType")
        limit = limit_param(params, 100, 1000)
        now = ex.now()
        start, end = self._window(params, now)
        if start is None and end is None:
            start = now - 7 * DAY_MS
        rows = [r for r in ex.state.income if (ins is None or r.symbol == ins.symbol)
                and (not kind or r.income_type == kind)
                and (start is None or r.time >= start) and (end is None or r.time <= end)]
        rows = rows[:limit]
        return [{"symbol": r.symbol, "incomeType": r.income_type, "income": f8(r.income), "asset": "USDT",
                 "info": r.info, "time": r.time, "tranId": r.tran_id,
                 "tradeId": str(r.trade_id) if r.trade_id else ""} for r in rows]

    def force_orders(self, params: Params) -> list[dict[str, Any]]:
        """``GET /fapi/v1/forceOrders``: the account's liquidation orders."""
        ex = self.ex
        ins = ex.instrument(params, required=False)
        limit = limit_param(params, 50, 100)
        rows = [o for o in ex.state.orders if o.client_order_id.startswith("autoclose-")
                and (ins is None or o.symbol == ins.symbol)][-limit:]
        return [ex.trading.order_view(o, with_time=True) for o in rows]


def _break_even(amt: float, entry: float) -> float:
    return entry * (1 + TAKER_FEE * (1 if amt > 0 else -1)) if amt else 0.0


def position_keys(ex: Exchange, symbol: str) -> list[str]:
    return [k for k in ex.state.positions if split_key(k)[0] == symbol]
