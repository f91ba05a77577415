"""The runnable examples of the docs run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_beyond_example_runs():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "beyond.py")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "done: report of 2026-11-27 ready"
    assert lines[1] == "notified ops@example.com"
    assert lines[2].startswith("schedule __main__.nightly_cleanup: next run ")
