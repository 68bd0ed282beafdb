"""Process helpers on ordinary files (stopping real processes is tested through the launcher's ``stop``)."""

from __future__ import annotations

from pathlib import Path

from connector.node.process import tail


def test_tail_gives_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == "line 97\nline 98\nline 99"
    assert "no log" in tail(tmp_path / "missing.log")
