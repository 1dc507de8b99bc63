"""`netspec check` starts fast because it imports only what checking needs.

Timing is for bench/check_speed.py (start-up against a bare `python -c pass`); this guards
the cause: the modules a fresh `python -m netspec check` has loaded when it ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# what check has no use for: torch, the slow validator (only for documents that fail the
# compiled checks), Graphviz, the emitters, training and the torch.fx importer
UNWANTED = ("torch", "jsonschema", "graphviz", "netspec.emit", "netspec.train",
            "netspec.importer.fx")

# runs `python -m netspec ARGS` in this interpreter, then writes the loaded modules out
PROBE = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["netspec", *sys.argv[2:]]
try:
    runpy.run_module("netspec", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    status = exc.code
with open(out, "w") as f:
    json.dump({"status": status, "modules": sorted(sys.modules)}, f)
"""


def loaded_by(tmp_path: Path, *args: str) -> list[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["status"] == 0, proc.stderr
    return data["modules"]


def unwanted(modules: list[str]) -> list[str]:
    return [m for m in modules
            if any(m == u or m.startswith(u + ".") or m.startswith(u + "_") for u in UNWANTED)]


@pytest.mark.parametrize("flags", [[], ["-q"]])
def test_check_imports_no_torch_validator_emitter_trainer_or_importer(tmp_path, flags):
    modules = loaded_by(tmp_path, "check", *flags, "specs/vgg16.yaml")
    assert unwanted(modules) == []
    assert "netspec.pipeline.check" in modules
    # nor the other commands' modules
    assert [m for m in modules if m.startswith("netspec.cli.")] == [
        "netspec.cli.check", "netspec.cli.common"]


def test_the_probe_sees_what_a_command_imports(tmp_path):
    # summary loads its emitter: the probe would notice an unwanted import in check
    modules = loaded_by(tmp_path, "summary", "specs/vgg16.yaml")
    assert unwanted(modules) == ["netspec.emit", "netspec.emit.summary"]
