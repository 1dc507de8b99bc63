"""The tutorial's first step: install netspec, start from a spec in the zoo, get editor
completion.  The student runs `pip install .` (not editable) and works in a folder of their
own, where neither specs/ nor schemas/ exist.

The default suite builds the wheel and checks that it holds the zoo and the schema, byte for
byte (the clone keeps one copy: netspec/zoo and netspec/schemas link to specs/zoo and
schemas/).  NETSPEC_INSTALLED_PACKAGE=1 (make fuzz) also installs that wheel into a fresh
virtual environment (--no-deps; torch and the rest come from the running environment's
site-packages, nothing from the network) and runs it from another folder: zoo, check,
render, schema, and training on the digits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from student import run

from netspec.pipeline import schema, zoo

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = os.environ.get("NETSPEC_INSTALLED_PACKAGE") == "1"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` would install, built from a copy of the clone's files."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "netspec", src / "netspec", symlinks=True, ignore=skip)
    shutil.copytree(ROOT / "specs" / "zoo", src / "specs" / "zoo")
    shutil.copytree(ROOT / "schemas", src / "schemas")
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist)],
        check=True, capture_output=True, text=True, env=_without_pythonpath(),
    )
    (built,) = dist.glob("netspec-*.whl")
    return built


def _without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


# ------------------------------------------------------------------ the package's files


def test_the_clone_keeps_one_copy_of_the_zoo_and_the_schema():
    assert (ROOT / "netspec" / "zoo").is_symlink()
    assert (ROOT / "netspec" / "zoo").resolve() == (ROOT / "specs" / "zoo").resolve()
    assert (ROOT / "netspec" / "schemas").resolve() == (ROOT / "schemas").resolve()
    assert zoo.names() == sorted(p.stem for p in (ROOT / "specs" / "zoo").glob("*.yaml"))
    assert schema.SCHEMA_FILE == (ROOT / "schemas" / "netspec.schema.json").resolve()


def test_the_wheel_ships_every_zoo_spec_and_the_schema(wheel):
    with zipfile.ZipFile(wheel) as z:
        shipped = {n: z.read(n) for n in z.namelist() if n.startswith(("netspec/zoo/",
                                                                       "netspec/schemas/"))}
    expected = {f"netspec/zoo/{p.name}": p.read_bytes()
                for p in (ROOT / "specs" / "zoo").glob("*.yaml")}
    expected["netspec/schemas/netspec.schema.json"] = \
        (ROOT / "schemas" / "netspec.schema.json").read_bytes()
    assert sorted(shipped) == sorted(expected)
    assert shipped == expected


# ------------------------------------------------------------------ netspec zoo


def test_netspec_zoo_lists_every_spec_with_its_shapes_and_parameters():
    status, out, _ = run(["zoo"])
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "network", "input", "output", "params"]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith("24 ")}
    assert set(zoo.names()) <= set(rows)
    assert rows["resnet18"].split()[1:5] == ["ResNet18", "3×224×224", "1000", "11,689,512"]
    assert "LeNet-5" in rows["lenet5"]
    status, out, _ = run(["zoo", "--json"])
    listed = [json.loads(line) for line in out.splitlines()]
    assert [e["name"] for e in listed] == zoo.names()
    lenet = next(e for e in listed if e["name"] == "lenet5")
    import netspec

    assert lenet["total_params"] == netspec.check(zoo.spec_path("lenet5")).total_params
    assert lenet["input_shape"] == [1, 32, 32] and lenet["output_shape"] == [10]


def test_netspec_zoo_copies_a_spec_to_start_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(["zoo", "resnet18", "-o", "my.yaml"])
    assert status == 0 and "wrote my.yaml" in err and "netspec check my.yaml" in err
    assert Path("my.yaml").read_text() == (ROOT / "specs/zoo/resnet18.yaml").read_text()
    assert run(["check", "-q", "my.yaml"])[0] == 0
    status, _, err = run(["zoo", "resnet18", "-o", "my.yaml"])
    assert status == 1 and "my.yaml exists; pass --force" in err
    assert run(["zoo", "lenet5", "-o", "my.yaml", "--force"])[0] == 0
    assert "name: LeNet5" in Path("my.yaml").read_text()
    Path("specs").mkdir()
    assert run(["zoo", "vgg11", "-o", "specs"])[0] == 0 and Path("specs/vgg11.yaml").is_file()
    status, out, _ = run(["zoo", "tutorial_cifar10"])
    assert status == 0 and out == (ROOT / "specs/zoo/tutorial_cifar10.yaml").read_text()


def test_netspec_zoo_names_what_it_does_not_have():
    status, _, err = run(["zoo", "resnet81"])
    assert status == 1
    assert "no zoo spec 'resnet81' (did you mean 'resnet18'?)" in err
    status, _, err = run(["zoo", "-o", "x.yaml"])
    assert status == 2 and "need a NAME" in err


def test_netspec_schema_writes_a_file_for_the_editor(tmp_path):
    target = tmp_path / "netspec.schema.json"
    status, out, err = run(["schema", "-o", str(target)])
    assert status == 0 and out == "" and f"wrote {target}" in err
    assert target.read_text() == schema.dumps(schema.generate())
    status, _, err = run(["schema", "-o", str(tmp_path / "missing" / "s.json")])
    assert status == 1 and "cannot write" in err


def test_a_zoo_spec_with_the_editor_line_validates_against_the_written_schema(tmp_path):
    """What yaml-language-server does with the README's first line: validate the YAML
    against the schema file it names (jsonschema here), while netspec still checks it."""
    import jsonschema
    import yaml

    assert run(["schema", "-o", str(tmp_path / "netspec.schema.json")])[0] == 0
    written = json.loads((tmp_path / "netspec.schema.json").read_text())
    # a valid Draft 2020-12 schema: editors refuse one that is not (ReLU's empty prefixItems)
    jsonschema.Draft202012Validator.check_schema(written)  # once: seconds for 250 kB
    editor = jsonschema.Draft202012Validator(written)
    for name in ("tutorial_cifar10", "resnet18", "gpt_tiny"):
        spec = tmp_path / f"{name}.yaml"
        assert run(["zoo", name, "-o", str(spec)])[0] == 0
        spec.write_text("# yaml-language-server: $schema=./netspec.schema.json\n"
                        + spec.read_text())
        editor.validate(yaml.safe_load(spec.read_text()))
        assert run(["check", "-q", str(spec)])[0] == 0
    wrong = yaml.safe_load("netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - Conv2d: {kernal_size: 3}\n")
    with pytest.raises(jsonschema.ValidationError):  # the typo an editor underlines
        editor.validate(wrong)


# ------------------------------------------------------------------ installed, elsewhere


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel alone; the running environment's packages (torch ...)
    are reached through a .pth line, which does not run that environment's own .pth files
    (its editable netspec stays out)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "running_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True, env=_without_pythonpath())
    return venv


@pytest.mark.skipif(not INSTALLED, reason="NETSPEC_INSTALLED_PACKAGE=1 (make fuzz) installs "
                    "the wheel into a fresh venv; the default suite checks the wheel's files")
def test_the_installed_package_works_from_another_folder(installed, tmp_path):
    def netspec(*argv: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(installed / "bin" / "netspec"), *argv], cwd=tmp_path,
                              capture_output=True, text=True, env=_without_pythonpath())
        assert done.returncode == 0, done.stderr
        return done

    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import netspec; print(netspec.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, env=_without_pythonpath())
    assert Path(where.stdout.strip()).is_relative_to(installed)
    assert "resnet18" in netspec("zoo").stdout
    netspec("zoo", "lenet5", "-o", "my.yaml")
    assert "output 10, 61,706 parameters" in netspec("check", "my.yaml").stdout
    netspec("render", "my.yaml", "-o", "my.dot")
    assert "digraph" in (tmp_path / "my.dot").read_text()
    assert "wrote" in netspec("schema", "--write").stderr
    netspec("schema", "-o", "netspec.schema.json")
    assert (tmp_path / "netspec.schema.json").read_bytes() == \
        (ROOT / "schemas" / "netspec.schema.json").read_bytes()
    netspec("train", "my.yaml", "--epochs", "2", "--lr", "0.003", "--progress", "none",
            "--no-tensorboard", "--runs", "runs",
            "--set", "data.transforms=[{Resize: {size: [32, 32]}}]")
    (summary,) = (tmp_path / "runs").glob("LeNet5/*/summary.json")
    assert json.loads(summary.read_text())["test_acc"] > 0.7
