"""The package's public API stays where the README puts it after the move into layers."""

import subprocess
import sys

import netspec


def test_public_names():
    for name in ("load", "check", "build", "SpecError", "CheckResult", "Spec", "Diagnostic",
                 "__version__"):
        assert hasattr(netspec, name), name
    assert callable(netspec.build) and callable(netspec.check)


def test_documented_emitter_modules_after_import_netspec():
    assert netspec.summary.summarize.__module__ == "netspec.emit.summary"
    assert netspec.render.to_dot.__module__ == "netspec.emit.render"
    assert netspec.codegen.generate.__module__ == "netspec.emit.codegen"


def test_import_netspec_loads_no_emitter_torch_or_jsonschema():
    code = ("import sys, netspec; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'jsonschema', 'graphviz') or m.startswith('netspec.emit.codegen')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
