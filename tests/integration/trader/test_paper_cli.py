"""`dolphin paper` refuses bad input in one line before it starts a trader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import dolphin

pytestmark = [pytest.mark.degradation]



@pytest.mark.parametrize(("args", "code", "message"), [
    (("--config", "purple"), 3, "unknown config 'purple'"),
    (("--venue", "binance"), 2, "--venue must be paper or sim"),
])
def test_paper_refuses_bad_input_in_one_line(args: tuple[str, ...], code: int, message: str, tmp_path: Path) -> None:
    res = dolphin("paper", *args, env={**os.environ, "DOLPHIN_HOME": str(tmp_path)})
    assert res.returncode == code, (res.stdout, res.stderr)
    assert message in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "journal").exists()    # no trader ran: no books were opened
