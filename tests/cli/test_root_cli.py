"""cli.py at the repository root runs netspec's command line from a clone."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True)


def test_root_cli_checks_like_python_m_netspec(tmp_path):
    spec = str(ROOT / "specs" / "zoo" / "resnet18.yaml")
    shim = run(str(ROOT / "cli.py"), "check", spec, cwd=tmp_path)
    module = run("-m", "netspec", "check", spec, cwd=tmp_path)
    assert shim.returncode == module.returncode == 0
    assert shim.stdout == module.stdout and "11,689,512 parameters" in shim.stdout


def test_root_cli_reports_errors_with_positions(tmp_path):
    spec = str(ROOT / "specs" / "broken" / "tutorial_in_features.yaml")
    shim = run(str(ROOT / "cli.py"), "check", spec, cwd=tmp_path)
    assert shim.returncode == 1
    assert shim.stderr.startswith(f"{spec}:13:27: error: ")


def test_root_cli_finds_its_package_under_isolated_mode(tmp_path):
    """python -I leaves the script's folder off sys.path: the shim puts it back."""
    shim = run("-I", str(ROOT / "cli.py"), "--version", cwd=tmp_path)
    assert shim.returncode == 0 and shim.stdout.startswith("netspec ")
