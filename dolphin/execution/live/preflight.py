"""`dolphin preflight`: the checks live trading must pass before it starts (the seed system's pre-live script).

Every check answers pass or fail with a reason an operator can act on; one failure
fails the preflight, and `dolphin live` refuses to start. The checks, in order:

configuration — ``config_ranges``, ``champion_hash``; the venue — ``network``,
``keys_present``, ``keys_file_mode``, ``venue_reachable``, ``clock_skew``,
``keys_accepted``, ``listen_key``, ``balance``, ``leverage_settable``,
``margin_type_settable``, ``exchange_filters``, ``no_unknown_positions``; the family —
``service_scanner``, ``service_obf``, ``service_exf``, ``service_acb``,
``service_watchdog``, ``service_mc`` (each RUNNING — its heartbeat fresh — and its data on
the bus fresh), ``mhs_green``, ``posture``, ``no_other_trader``, ``scan_rate``,
``error_rate``; this host — ``kill_switch_clear``, ``journal_writable``.

Data services are judged generically from the bus (``DOLPHIN_HEARTBEAT[<name>_heartbeat]``
and the key each publishes, bible §15): a service that does not exist yet simply fails
its check, saying what is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from dolphin.bus import schema
from dolphin.config.services import ServicesConfig
from dolphin.enums import HealthStatus, KillLevel, Posture
from dolphin.errors import DolphinError
from dolphin.execution.kill_switch import KillSwitch
from dolphin.execution.live.filters import filters_from
from dolphin.execution.live.history import venue_history
from dolphin.execution.live.venue import ApiKeys, LiveVenue, keys_file, live_journal_path, load_keys, resolve_venue
from dolphin.market.errors import MarketError, SettingRejectedError
from dolphin.market.rest import BinanceRest
from dolphin.market.symbols import universe
from dolphin.secret_file import SecretFileError, read_secret_file

HEARTBEAT_FRESH_S = 15.0
ERROR_WINDOW_S = 900.0
LOG_TAIL_BYTES = 256 * 1024
SCAN_RATE_WINDOW_S = 120.0
OTHER_TRADER_FRESH_S = 30.0


class PreflightFailed(DolphinError):
    """At least one preflight check failed: live trading refuses to start."""

    exit_code = 40


class CheckResult(msgspec.Struct, frozen=True):
    name: str
    ok: bool
    reason: str


class PreflightReport(msgspec.Struct, frozen=True):
    network: str
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]


@dataclass(frozen=True, slots=True)
class DataService:
    name: str
    heartbeats: tuple[str, ...]      # service names its heartbeat may carry
    map_name: str
    key: str
    fresh_s: float


DATA_SERVICES: tuple[DataService, ...] = (
    DataService("scanner", ("scanner",), schema.FEATURES, schema.LATEST_EIGEN_SCAN, 30.0),
    DataService("obf", ("obf",), schema.FEATURES, schema.OBF_UNIVERSE_LATEST, 180.0),
    DataService("exf", ("exf",), schema.FEATURES, schema.EXF_LATEST, 300.0),
    DataService("acb", ("acb",), schema.FEATURES, schema.ACB_BOOST, 3 * 3600.0),
    DataService("watchdog", ("watchdog", "survival"), schema.SAFETY, schema.LATEST, 60.0),
    DataService("mc", ("mc", "mcfw", "mc_forewarner"), schema.FEATURES, schema.MC_FOREWARNER_LATEST, 5 * 3600.0),
)


class _Fail(Exception):
    """A check's failure with its reason."""


class Preflight:
    """The checks, sharing what they learn (the REST client, the venue's answers, the bus)."""

    def __init__(self, scfg: ServicesConfig, *, mainnet: bool, home: Path, strategy: str,
                 bus: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.scfg = scfg
        self.live = scfg.live
        self.mainnet = mainnet
        self.home = home
        self.strategy = strategy
        self.bus = bus
        self.bus_error = ""
        self.clock = clock
        self.venue: LiveVenue | None = None
        self.keys: ApiKeys | None = None
        self.rest: BinanceRest | None = None
        self.reachable = False
        self.cfg: Any = None
        self.symbols: list[str] = []
        self._account: Any = None

    # ------------------------------------------------------------------ running
    async def run(self) -> PreflightReport:
        checks: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("config_ranges", self.config_ranges), ("champion_hash", self.champion_hash),
            ("network", self.network), ("keys_present", self.keys_present), ("keys_file_mode", self.keys_file_mode),
            ("venue_reachable", self.venue_reachable), ("clock_skew", self.clock_skew),
            ("keys_accepted", self.keys_accepted), ("listen_key", self.listen_key), ("balance", self.balance),
            ("leverage_settable", self.leverage_settable), ("margin_type_settable", self.margin_type_settable),
            ("exchange_filters", self.exchange_filters), ("no_unknown_positions", self.no_unknown_positions),
            *((f"service_{s.name}", self._service_check(s)) for s in DATA_SERVICES),
            ("mhs_green", self.mhs_green), ("posture", self.posture), ("no_other_trader", self.no_other_trader),
            ("scan_rate", self.scan_rate), ("error_rate", self.error_rate),
            ("kill_switch_clear", self.kill_switch_clear), ("journal_writable", self.journal_writable)]
        results: list[CheckResult] = []
        try:
            for name, check in checks:
                try:
                    results.append(CheckResult(name, True, await check()))
                except (_Fail, DolphinError) as exc:
                    results.append(CheckResult(name, False, str(exc)))
                except Exception as exc:  # noqa: BLE001 - a check that breaks is a failed check, with its cause
                    results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))
        finally:
            if self.rest is not None:
                await self.rest.close()
        return PreflightReport(network=self.venue.network if self.venue else "unknown", checks=results)

    def _rest(self) -> BinanceRest:
        if self.rest is None:
            raise _Fail("no venue to ask (see network / keys_present)")
        if not self.reachable:
            raise _Fail("the venue is not reachable (see venue_reachable)")
        return self.rest

    def _bus(self) -> Any:
        if self.bus is None:
            detail, self.bus_error = self.bus_error, ""    # the cause once, on the first check that needs the bus
            raise _Fail(f"the bus is not reachable{': ' + detail if detail else ' (see above)'}")
        return self.bus

    # ------------------------------------------------------------------ configuration
    async def config_ranges(self) -> str:
        from dolphin.config import load_config

        self.cfg = load_config(self.strategy)
        self.symbols = universe(self.scfg.scanner.symbols)
        live = self.live
        if live.leverage_ceiling > live.symbol_leverage:
            raise _Fail(f"live.leverage_ceiling {live.leverage_ceiling:g} is above live.symbol_leverage "
                        f"{live.symbol_leverage}: the venue would refuse the margin of such an order")
        if live.max_notional_usdt < 5.0:
            raise _Fail("live.max_notional_usdt is below the venue's 5 USDT minimum notional")
        return f"{self.cfg.name}: strategy and services configs valid; {len(self.symbols)} symbols"

    async def champion_hash(self) -> str:
        from dolphin.config import CHAMPION_HASH, champion_hash, drift

        if self.cfg is None:
            raise _Fail("the strategy config did not load")
        problems = drift(self.cfg.frozen_params())
        if problems:
            raise _Fail(f"{self.cfg.name} differs from the champion: {'; '.join(problems[:3])}"
                        + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""))
        return f"{champion_hash(self.cfg.frozen_params())} = champion {CHAMPION_HASH}"

    # ------------------------------------------------------------------ the venue
    async def network(self) -> str:
        self.venue = resolve_venue(mainnet=self.mainnet)
        word = {"mainnet": "MAINNET — real money", "testnet": "Binance testnet",
                "sim": "a simulator on loopback (rehearsal)"}[self.venue.network]
        return f"{word}: {self.venue.rest_url}"

    async def keys_present(self) -> str:
        if self.venue is None:
            raise _Fail("no venue (see network)")
        self.keys = load_keys(self.venue, keys_file(self.home, self.live.keys_file))
        self.rest = BinanceRest(self.venue.rest_url, *self.keys.secrets(), allow_mainnet=self.venue.is_mainnet,
                                timeout_s=5.0, max_retries=0)
        return f"from {self.keys.source}"

    async def keys_file_mode(self) -> str:
        path = keys_file(self.home, self.live.keys_file)
        if not (path.exists() or path.is_symlink()):
            if self.keys is not None and self.keys.source != str(path):
                return f"no key file ({path}); keys from {self.keys.source}"
            raise _Fail(f"no key file at {path}")
        try:
            read_secret_file(path)
        except SecretFileError as exc:
            raise _Fail(str(exc)) from None
        return f"{path}: mode 0600, owned by this user"

    async def venue_reachable(self) -> str:
        if self.rest is None:
            raise _Fail("no venue to ask (see keys_present)")
        t0 = time.perf_counter()
        try:
            await self.rest.ping()
        except MarketError as exc:
            raise _Fail(f"{self.rest.base_url}: {exc}") from None
        self.reachable = True
        return f"ping {1000 * (time.perf_counter() - t0):.0f} ms"

    async def clock_skew(self) -> str:
        rest = self._rest()
        before = self.clock()
        server = await rest.server_time()
        after = self.clock()
        skew_ms = server - (before + after) / 2 * 1000
        if self.venue is not None and self.venue.network == "sim":
            speed = await rest.venue_speed()
            if speed != 1.0 or abs(skew_ms) > self.live.max_clock_skew_ms:
                return (f"simulated market clock ({skew_ms / 1000:+.0f} s from this host, speed {speed:g}): "
                        "requests are signed on the venue's own clock")
        if abs(skew_ms) > self.live.max_clock_skew_ms:
            raise _Fail(f"this host's clock is {skew_ms:+.0f} ms from the venue's (max "
                        f"{self.live.max_clock_skew_ms:g}): fix NTP")
        return f"{skew_ms:+.0f} ms"

    async def keys_accepted(self) -> str:
        account = await self._rest().account()
        self._account = account
        if not account.can_trade:
            raise _Fail("the API key may not trade on this account")
        return "signed request accepted; the account can trade"

    async def listen_key(self) -> str:
        await self._rest().new_listen_key()
        return "a user-data stream key was issued"

    async def balance(self) -> str:
        account = self._account
        if account is None:
            raise _Fail("no account answer (see keys_accepted)")
        usdt = next((a for a in account.assets if a.asset == "USDT"), None)
        wallet = usdt.wallet_balance if usdt is not None else account.total_wallet_balance
        if wallet < self.live.min_balance_usdt:
            raise _Fail(f"{wallet:,.2f} USDT, below live.min_balance_usdt {self.live.min_balance_usdt:,.2f}")
        return f"{wallet:,.2f} USDT (minimum {self.live.min_balance_usdt:,.2f})"

    def _probe_symbol(self) -> str:
        return self.symbols[0] if self.symbols else "BTCUSDT"

    async def leverage_settable(self) -> str:
        symbol = self._probe_symbol()
        info = await self._rest().change_leverage(symbol, self.live.symbol_leverage)
        return f"{symbol} at {info.leverage}x"

    async def margin_type_settable(self) -> str:
        symbol = self._probe_symbol()
        wanted = self.live.margin_type
        try:
            await self._rest().change_margin_type(symbol, wanted)
        except SettingRejectedError as exc:
            if exc.code == -4046:
                return f"{symbol} already {wanted}"
            raise _Fail(f"{symbol} cannot be set {wanted}: {exc.code} {exc.msg}") from None
        return f"{symbol} set {wanted}"

    async def exchange_filters(self) -> str:
        filters = filters_from(await self._rest().exchange_info())
        missing = [s for s in self.symbols if s not in filters or not filters[s].step > 0]
        if missing:
            raise _Fail(f"{len(missing)} symbol(s) of the universe not traded there: {', '.join(missing[:8])}")
        return f"{len(self.symbols)} symbols with step, tick and minimum notional"

    async def no_unknown_positions(self) -> str:
        rest = self._rest()
        positions = {p.symbol: p.position_amt for p in await rest.position_risk() if p.position_amt}
        if self.cfg is None or self.venue is None:
            raise _Fail("no strategy or venue (see config_ranges / network)")
        history = venue_history(live_journal_path(self.home, self.cfg.name, self.venue.network))
        expected = {s: q for s, q in history.net.items() if abs(q) > 1e-12}
        unknown = [f"{s} venue {positions.get(s, 0.0):+g}, journal {expected.get(s, 0.0):+g}"
                   for s in sorted(set(positions) | set(expected))
                   if abs(positions.get(s, 0.0) - expected.get(s, 0.0)) > 1e-9 * max(1.0, abs(expected.get(s, 0.0)))]
        if unknown:
            raise _Fail("positions the journal does not account for: " + "; ".join(unknown[:5]))
        held = ", ".join(f"{s} {q:+g}" for s, q in sorted(positions.items()))
        return f"every venue position is in the journal ({held or 'flat'})"

    # ------------------------------------------------------------------ the family, on the bus
    def _service_check(self, svc: DataService) -> Callable[[], Awaitable[str]]:
        async def check() -> str:
            bus = self._bus()
            now = self.clock()
            beats = []
            for name in svc.heartbeats:
                hb = await bus.get(schema.HEARTBEAT, schema.heartbeat_key(name))
                if hb is not None:
                    beats.append(now - hb.ts)
            value = await bus.get(svc.map_name, svc.key)
            problems = []
            if not beats:
                problems.append(f"no heartbeat ({svc.heartbeats[0]}_heartbeat): is it running?")
            elif min(beats) > HEARTBEAT_FRESH_S:
                problems.append(f"last heartbeat {min(beats):.0f} s ago (not RUNNING?)")
            age = None
            if value is None:
                problems.append(f"nothing at {svc.map_name}[{svc.key}]")
            else:
                published = value.published_s()
                age = None if published is None else now - published
                if age is None or age > svc.fresh_s:
                    problems.append(f"{svc.map_name}[{svc.key}] is "
                                    f"{'of unknown age' if age is None else f'{age:.0f} s old'} (fresh: ≤ "
                                    f"{svc.fresh_s:g} s)")
            if problems:
                raise _Fail(f"{svc.name}: " + "; ".join(problems))
            return f"{svc.name} RUNNING (heartbeat {min(beats):.0f} s), data {age:.0f} s old"
        return check

    async def mhs_green(self) -> str:
        report = await self._bus().get(schema.META_HEALTH, schema.LATEST)
        if report is None:
            raise _Fail("no MHS report on the bus (is mhs running?)")
        age = self.clock() - (report.timestamp_s() or 0.0)
        if age > 60.0:
            raise _Fail(f"the MHS report is {age:.0f} s old")
        if report.status != HealthStatus.GREEN:
            raise _Fail(f"MHS says {report.status} (rm_meta {report.rm_meta:.2f})")
        return f"GREEN (rm_meta {report.rm_meta:.2f})"

    async def posture(self) -> str:
        safety = await self._bus().get(schema.SAFETY, schema.LATEST)
        if safety is None:
            raise _Fail("no posture on the bus (the survival watchdog has not published)")
        if safety.posture == Posture.HIBERNATE:
            raise _Fail(f"posture is HIBERNATE ({safety.reason or 'no reason given'})")
        return str(safety.posture)

    async def no_other_trader(self) -> str:
        state = await self._bus().get(schema.STATE_BLUE, schema.LATEST)
        if state is None or state.live is not None:
            return "no paper trader publishes the strategy's state"
        age = self.clock() - state.timestamp_s()
        if age <= OTHER_TRADER_FRESH_S:
            raise _Fail(f"a {state.venue or 'paper'} trader published {schema.STATE_BLUE} {age:.0f} s ago: stop it "
                        "(`dolphin svc stop trader`) — both would publish the same state")
        return f"the last {state.venue or 'paper'} state is {age:.0f} s old (not running)"

    async def scan_rate(self) -> str:
        bar_s = self.scfg.scanner.bar_seconds
        speed = self.scfg.market.speed if self.scfg.market.source == "sim" else 1.0
        expected = SCAN_RATE_WINDOW_S * speed / bar_s
        recent = archived_since(self.home, self.clock() - SCAN_RATE_WINDOW_S)
        if recent < 0.8 * expected:
            raise _Fail(f"{recent} scans archived in the last {SCAN_RATE_WINDOW_S:.0f} s, expected ~{expected:.0f} "
                        f"(one per {bar_s} s bar at speed {speed:g})")
        return f"{recent} scans in the last {SCAN_RATE_WINDOW_S:.0f} s (expected ~{expected:.0f})"

    async def error_rate(self) -> str:
        logs = self.home / "logs"
        since = self.clock() - ERROR_WINDOW_S
        counts = count_recent_errors(logs, since)
        total = sum(counts.values())
        if total > self.live.max_recent_errors:
            worst = ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:3])
            raise _Fail(f"{total} ERROR lines in the family's logs over {ERROR_WINDOW_S / 60:.0f} min (max "
                        f"{self.live.max_recent_errors}): {worst}")
        return f"{total} ERROR lines over {ERROR_WINDOW_S / 60:.0f} min"

    # ------------------------------------------------------------------ this host
    async def kill_switch_clear(self) -> str:
        state = KillSwitch.under(self.home, self.scfg.trader.kill_switch).state()
        if state.level is not KillLevel.CLEAR:
            raise _Fail(f"the kill switch is at {state.level} ({state.reason or 'no reason'}, by {state.by or '?'}): "
                        "`dolphin kill clear` when it is safe")
        return "clear"

    async def journal_writable(self) -> str:
        directory = self.home / "journal"
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".preflight-probe"
        try:
            with open(probe, "wb") as fh:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise _Fail(f"{directory}: {exc.strerror or exc}") from None
        finally:
            probe.unlink(missing_ok=True)
        free_mb = shutil.disk_usage(directory).free / 1e6
        if free_mb < self.live.min_free_disk_mb:
            raise _Fail(f"{free_mb:,.0f} MB free under {directory} (min {self.live.min_free_disk_mb:,.0f})")
        return f"{directory} writable, {free_mb:,.0f} MB free"


def archived_since(home: Path, since: float) -> int:
    """Scan files the scanner wrote (file time) since ``since``, in the archive's two newest day folders."""
    from dolphin.store.arrow_scans import archive_dir
    from dolphin.store.scan_archive import DAY_DIR_RE

    root = archive_dir(home)
    try:
        days = sorted(e.path for e in os.scandir(root) if e.is_dir() and DAY_DIR_RE.match(e.name))
    except OSError:
        return 0
    n = 0
    for day in days[-2:]:
        try:
            with os.scandir(day) as entries:
                n += sum(1 for e in entries if e.name.endswith(".arrow") and e.stat().st_mtime >= since)
        except OSError:
            continue
    return n


_LOG_LINE = re.compile(rb"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),\d{3} (ERROR|CRITICAL) ", re.MULTILINE)


def count_recent_errors(logs: Path, since: float) -> dict[str, int]:
    """ERROR/CRITICAL lines (the services' log format) newer than ``since``, per log file (tails only)."""
    counts: dict[str, int] = {}
    try:
        files = [p for p in logs.glob("*.log") if p.stat().st_mtime >= since]
    except OSError:
        return counts
    for path in files:
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - LOG_TAIL_BYTES))
                data = fh.read()
        except OSError:
            continue
        n = 0
        for m in _LOG_LINE.finditer(data):
            try:
                at = datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S").timestamp()
            except ValueError:
                continue
            if at >= since:
                n += 1
        if n:
            counts[path.name] = n
    return counts


async def run_preflight(scfg: ServicesConfig, *, mainnet: bool, home: Path, strategy: str,
                        connect_bus: bool = True) -> PreflightReport:
    """Every check, with the bus when it answers (its checks fail with the reason when it does not)."""
    bus = client = None
    error = ""
    if connect_bus:
        from dolphin.bus import AsyncBus, connect_async

        try:
            client = await connect_async(client_name="dolphin-preflight", cluster_connect_timeout=5.0)
            bus = AsyncBus(client, source="dolphin preflight")
        except DolphinError as exc:
            error = str(exc)
    try:
        pre = Preflight(scfg, mainnet=mainnet, home=home, strategy=strategy, bus=bus)
        pre.bus_error = error
        return await pre.run()
    finally:
        if client is not None:
            await client.shutdown()


__all__ = ["DATA_SERVICES", "CheckResult", "Preflight", "PreflightFailed", "PreflightReport", "count_recent_errors", "run_preflight"]
