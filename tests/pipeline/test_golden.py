"""Golden tests: `netspec check` on every realistic mistake in specs/broken/ must print
exactly the reviewed messages in NAME.expected (stderr) and exit 1.

Regenerate after a deliberate message change, then review the diff before committing:

    NETSPEC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/pipeline/test_golden.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "specs" / "broken"
SPECS = sorted(BROKEN.glob("*.yaml"))
UPDATE = os.environ.get("NETSPEC_UPDATE_GOLDEN") == "1"


def run_check(relative: str) -> subprocess.CompletedProcess:
    # From the repository root with the relative path, exactly as the goldens were made.
    return subprocess.run([sys.executable, "-m", "netspec", "check", relative], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=60,
                          check=False, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def test_there_are_enough_mistakes():
    assert len(SPECS) >= 12


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_broken_spec_says_what_is_wrong(spec: Path):
    text = spec.read_text(encoding="utf-8")
    if text.strip():  # empty.yaml is the one mistake that cannot carry a comment
        assert text.startswith("#"), f"{spec.name} should start with a comment saying what is wrong"


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_golden(spec: Path):
    relative = spec.relative_to(ROOT).as_posix()
    proc = run_check(relative)
    golden = spec.with_suffix(".expected")
    if UPDATE:
        golden.write_text(proc.stderr, encoding="utf-8")
    assert golden.is_file(), f"no golden for {relative}; run with NETSPEC_UPDATE_GOLDEN=1"
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == golden.read_text(encoding="utf-8")
    assert proc.returncode == 1
