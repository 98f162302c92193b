"""The terminal check a person would do: `dolphin tui` in a real terminal (tmux), read the screen, press q.

Each test runs its own tmux server (``-L``) so it never touches anyone's sessions, and
kills only that server. Skipped only when tmux is not installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dolphin.bus import Bus, BusSettings, connect, schema
from dolphin.supervision.rpc import SupervisorClient
from tests.support import PROJECT_ROOT, dolphin, free_port, wait_until
from tests.tui import support as S

pytestmark = [pytest.mark.cli, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

DOLPHIN = [sys.executable, "-m", "commands"]
# tall enough for the full layout with every program of the family in the services table (below
# tui.app.COMPACT_BELOW rows the panels share the height and the table scrolls: the snapshots cover it)
WIDTH, HEIGHT = 160, 64
SCREEN_TIMEOUT_S = 120.0  # a guard against hangs: a loaded machine can take long to start and paint the TUI


class Tmux:
    """One private tmux server with one session running a command."""

    def __init__(self, name: str) -> None:
        self.server = f"dolphin-test-{os.getpid()}-{name}"
        self.session = "tui"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=30,
                              check=check)

    def start(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        shell = f"cd {shlex.quote(str(cwd))} && env -u COLUMNS -u LINES {assignments} {shlex.join(command)}"
        self._run("-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
                  shell)
        self._run("set-option", "-t", self.session, "window-size", "manual", check=False)
        self._run("resize-window", "-t", self.session, "-x", str(WIDTH), "-y", str(HEIGHT), check=False)

    def capture(self) -> str:
        result = self._run("capture-pane", "-p", "-t", self.session, check=False)
        return result.stdout

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", self.session, *keys)

    def alive(self) -> bool:
        return self._run("has-session", "-t", self.session, check=False).returncode == 0

    def wait_screen(self, *needles: str, timeout: float = SCREEN_TIMEOUT_S) -> str:
        """The screen once every needle is on it (each one stays there: never wait for a toast)."""
        return self.wait_screen_for(lambda screen: all(n in screen for n in needles), str(needles), timeout)

    def wait_screen_for(self, ok: Callable[[str], bool], what: str, timeout: float = SCREEN_TIMEOUT_S) -> str:
        seen: list[str] = [""]

        def look() -> str | None:
            seen[0] = self.capture()
            return seen[0] if ok(seen[0]) else None

        try:
            return wait_until(look, timeout, 0.5, what)
        except AssertionError:
            raise AssertionError(f"{what} not on screen after {timeout:.0f} s; screen was:\n{seen[0]}") from None

    def kill(self) -> None:
        self._run("kill-server", check=False)
        socket_dir = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (socket_dir / self.server).unlink(missing_ok=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(str(time.monotonic_ns()))
    try:
        yield t
    finally:
        t.kill()


def _env(home: Path, **extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM_PROGRAM")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(TERM="xterm-256color", DOLPHIN_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT), COLORTERM="truecolor",
               **extra)
    return env


def _row_shows(screen: str, *cells: str) -> bool:
    """Some line of the screen holds every cell (a row of the services table)."""
    return any(all(c in line for c in cells) for line in screen.splitlines())


def _panels_say_something(screen: str) -> None:
    for title in ("Trader", "SysHealth", "Capital", "AlphaEngine", "Scan", "ACB", "ExtF", "OBF", "MC-Forewarner",
                  "Services (supervisord)", "Tests"):
        assert f"─ {title}" in screen, f"panel {title} missing:\n{screen}"
    assert "cannot render" not in screen and "Traceback" not in screen


def test_plain_dolphin_up_opens_the_tui_then_dolphin_tui_attaches_and_q_leaves_the_family_up(
        tmp_path: Path, tmux: Tmux) -> None:
    """README line 1 as a person runs it: plain `dolphin up` brings the family up and opens the TUI, every
    panel shows data or why not, q leaves the family running; then `dolphin tui` attaches to the running
    family and shows every program with its supervisord state. One family for both (each start is ~30 s)."""
    from dolphin.supervision.render import FamilyPaths

    home = tmp_path / "home"
    env = _env(home, DOLPHIN_HZ_PORT=str(free_port()), DOLPHIN_SIM_PORT=str(free_port()))
    try:
        tmux.start([*DOLPHIN, "up"], env, PROJECT_ROOT)
        screen = tmux.wait_screen("bus ●", "polled", "Services (supervisord)", timeout=300)
        _panels_say_something(screen)
        tmux.keys("q")
        wait_until(lambda: not tmux.alive(), 60, what="the TUI opened by `dolphin up` to quit")
        sup = SupervisorClient(FamilyPaths.for_home(home).socket, timeout=10)
        assert sup.ping(), "quitting the TUI must leave the family running"

        tmux.start([*DOLPHIN, "tui"], env, PROJECT_ROOT)
        screen = tmux.wait_screen("bus ●", "polled", "Services (supervisord)")
        _panels_say_something(screen)

        def every_program_as_supervisord_says(screen: str) -> bool:
            # states are read again at each look: the table shows them one poll later
            return all(_row_shows(screen, info.name, info.state) for info in sup.all_processes())

        tmux.wait_screen_for(every_program_as_supervisord_says, "every program with its supervisord state")
        tmux.keys("q")
        wait_until(lambda: not tmux.alive(), 60, what="`dolphin tui` to quit")
        assert sup.ping(), "quitting the TUI must leave the family running"
    finally:
        dolphin("down", env={**os.environ, **env})


def test_tui_against_a_bus_and_supervisord(tmp_path: Path, tmux: Tmux) -> None:
    """A member and a sleeper under a real supervisord; a scan on the bus shows; restart works from the keys."""
    port = free_port()
    sup = S.MiniSupervisor(tmp_path / "family", programs={
        "hz": [sys.executable, "-m", "dolphin.bus.member", "--port", str(port)],
        "scanner": [sys.executable, str(tmp_path / "family" / "sleeper.py"), "scanner"],
    }).start()
    try:
        client = connect(BusSettings(members=(f"127.0.0.1:{port}",), connect_timeout_s=20))
        bus = Bus(client)
        now = time.time()
        bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(777, now))
        bus.put(schema.META_HEALTH, schema.LATEST, S.meta_health(now))
        env = _env(tmp_path / "home", DOLPHIN_HZ_PORT=str(port))
        tmux.start([*DOLPHIN, "tui", "--socket", str(sup.socket)], env, PROJECT_ROOT)
        screen = tmux.wait_screen("bus ●", "#777", "GREEN", "polled")
        _panels_say_something(screen)
        assert "scanner" in screen and "RUNNING" in screen
        assert "no test results yet" in screen
        bus.put(schema.FEATURES, schema.LATEST_EIGEN_SCAN, S.scan(778, time.time()))
        tmux.wait_screen("#778")
        before = sup.client.process("dolphin_data:scanner").pid
        names = [p.name for p in sup.client.all_processes()]
        tmux.keys("s")
        for _ in range(names.index("scanner")):
            tmux.keys("Down")
        tmux.keys("Enter")
        tmux.wait_screen("Restart (r)")
        tmux.keys("r")
        tmux.wait_screen("Restart dolphin_data:scanner?")
        tmux.keys("y")
        after = wait_until(lambda: (p := sup.client.process("dolphin_data:scanner")).state == "RUNNING"
                           and p.pid not in (0, before) and p, 60, what="the restart from the keys")
        # the table keeps showing the new pid (the "restarted" toast goes away after 5 s: not waited for)
        tmux.wait_screen_for(lambda screen: _row_shows(screen, "scanner", "RUNNING", str(after.pid)),
                             f"scanner RUNNING with its new pid {after.pid}")
        tmux.keys("q")
        wait_until(lambda: not tmux.alive(), 60, what="the TUI to quit")
        assert sup.client.process("dolphin_data:hz").state == "RUNNING"
        client.shutdown()
    finally:
        sup.stop()
