"""Using netspec from Python as a student first does, in a notebook (issue 13, point 7):
a misspelt file name, print(result), netspec.summary, help()."""

from __future__ import annotations

import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.cli import main

ROOT = Path(__file__).resolve().parents[2]
TUDUI = ROOT / "specs" / "zoo" / "tutorial_cifar10.yaml"


@pytest.mark.parametrize("name", ["tudui.yml", "specs/tudui.yaml", "my net.json", "tudui"])
def test_a_file_that_does_not_exist_is_no_such_file(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        netspec.check(name)
    with pytest.raises(FileNotFoundError, match="no such file"):
        netspec.load(name)


def test_one_line_yaml_text_is_still_yaml():
    result = netspec.check("{netspec: 1, input: [4], layers: [{Linear: [4, 2]}]}")
    assert result.ok and result.output_shape == (2,)


def test_the_cli_says_no_such_file_too(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "tudui.yml"]) == 2
    assert "tudui.yml" in capsys.readouterr().err


def test_print_shows_the_table_and_repr_is_one_line():
    result = netspec.check(TUDUI)
    assert str(result) == result.table()
    assert repr(result) == (f"<CheckResult {TUDUI}: ok, Tudui, input 3×32×32 -> 10, "
                            "145,578 parameters>")
    broken = netspec.check("netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - Linear: [7, 2]\n")
    assert repr(broken) == "<CheckResult <spec>: 1 error>"
    assert str(broken) == "\n".join(d.format() for d in broken.diagnostics)
    assert "in_features 7 does not match" in str(broken)


def test_summary_after_import_netspec_alone_without_torch():
    code = ("import sys, netspec\n"
            f"s = netspec.summary({str(TUDUI)!r}, batch=64)\n"
            "print(s)\n"
            "assert s.params == 145578 and str(s) == s.table()\n"
            "assert netspec.summary.summarize is not None\n"
            "assert 'torch' not in sys.modules\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Tudui" in run.stdout and "145,578" in run.stdout


@pytest.mark.parametrize("thing, says", [
    ("check", "infer every"),
    ("load", "FileNotFoundError"),
    ("CheckResult", "print(result)"),
    ("summary", "torchinfo"),
])
def test_help_explains(thing, says):
    text = pydoc.render_doc(getattr(netspec, thing), renderer=pydoc.plaintext)
    assert says in text


def test_public_functions_and_result_fields_have_docstrings():
    for name in ("check", "load", "build"):
        assert (getattr(netspec, name).__doc__ or "").strip(), name
    for name in ("ok", "errors", "warnings", "output_shape", "total_params", "table",
                 "as_json"):
        assert (getattr(netspec.CheckResult, name).__doc__ or "").strip(), name
