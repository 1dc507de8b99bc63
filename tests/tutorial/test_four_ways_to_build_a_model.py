"""The tutorial's "four ways to build a model", as a student meets them with netspec: the
README's Tudui spec through `netspec codegen --style class|sequential|add-module|ordereddict`.

Each style must look like the tutorial's way of the same name (class: an nn.Module with the
layers as attributes and an explicit forward; sequential: nn.Sequential(...); add-module and
ordereddict: named children), say exactly that in `--help`, and build the model
netspec.build builds: its weights load (by key where the file keeps the spec's names, by
position where the file says it names or gives names up) and the outputs agree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from generated import BY_POSITION, build_weights_for, load_generated

import netspec
from netspec.emit.codegen import STYLES, generate

ROOT = Path(__file__).resolve().parents[2]
NAMED = ROOT / "specs" / "zoo" / "tutorial_cifar10.yaml"  # every layer named


def readme_spec() -> str:
    """The spec the README opens with, as a student copies it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.search(r"```yaml\n(.*?)```", text, re.S).group(1)


def codegen_help() -> str:
    run = subprocess.run([sys.executable, "-m", "netspec", "codegen", "--help"],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    return run.stdout


def help_of(style: str, text: str) -> str:
    """The help's description of one style (its line and the indented ones after it)."""
    block = re.search(rf"^  {re.escape(style)} +(.*?)(?=^  \S|^\S)", text, re.S | re.M)
    assert block, f"--help describes no style {style!r}"
    return " ".join(block.group(1).split())


def test_class_style_is_a_module_with_attributes_and_forward():
    source = generate(readme_spec(), "class")
    assert "class Tudui(nn.Module):" in source and "nn.Sequential" not in source
    assert "        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)  # -> 32×32×32" in source
    assert "        self.pool1 = nn.MaxPool2d(2)" in source
    assert "        self.flatten = nn.Flatten()" in source
    assert "        self.fc1 = nn.Linear(1024, 64)" in source  # the spec's own name
    assert "        self.fc2 = nn.Linear(64, 10)" in source  # the next free fc number
    assert "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n" \
           "        x = self.conv1(x)\n        x = self.pool1(x)\n" in source
    # the unnamed README spec reads like the zoo's named one, line for line
    body = source.split('"""')[-1]
    assert body == generate(NAMED, "class").split('"""')[-1]


def test_sequential_style_gives_names_up_and_says_so():
    source = generate(NAMED, "sequential")  # refused before: "cannot keep the name 'conv1'"
    assert "class Tudui(nn.Sequential):" in source
    assert "        super().__init__(\n            nn.Conv2d(3, 32, 5, padding=2),  #" in source
    assert "OrderedDict" not in source and "add_module" not in source
    assert "the spec's 9 names are given up here (conv1 is 0, pool1 is 1, conv2 is 2, ...)" \
        in " ".join(source.split())
    assert BY_POSITION in source


@pytest.mark.parametrize("style, line", [
    ("add-module", '        self.add_module("conv1", nn.Conv2d(3, 32, 5, padding=2))'),
    ("ordereddict", '                    ("conv1", nn.Conv2d(3, 32, 5, padding=2)),'),
])
def test_named_styles_use_the_specs_names_or_readable_ones(style, line):
    for spec in (readme_spec(), NAMED):
        source = generate(spec, style)
        assert line in source, style
        assert '"0"' not in source and '"8"' not in source, style
        assert '"fc1"' in source and '"fc2"' in source and '"flatten"' in source, style


def test_help_says_what_each_style_writes():
    text = codegen_help()
    for style in STYLES:
        said = help_of(style, text)
        source = generate(readme_spec(), style)
        header = re.search(r"class Net\((nn\.\w+)\): (.*?)\.\.\.", said)
        assert header, (style, said)
        assert f"class Tudui({header.group(1)}):" in source, (style, said)
        # what the help shows of the body, up to its first "...", is what the file writes
        # (whitespace aside: ruff format breaks the long calls into lines)
        shown = "".join(header.group(2).split())
        assert shown in "".join(source.split()), (style, shown)
    assert "forward" in help_of("class", text) and "given up" in help_of("sequential", text)
    assert BY_POSITION in text


@pytest.mark.parametrize("spec_kind", ["readme", "named"])
def test_every_way_builds_the_same_model(spec_kind, tmp_path):
    """Each file, imported, takes netspec.build's weights (by key where it keeps the spec's
    names, by position where it says so) and computes the same outputs."""
    spec = readme_spec() if spec_kind == "readme" else NAMED
    torch.manual_seed(0)
    built = netspec.build(spec).eval()
    weights = built.state_dict()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = built(x)
    for style in STYLES:
        source = generate(spec, style)
        module = load_generated(source, f"tudui_{spec_kind}_{style.replace('-', '_')}",
                                tmp_path)
        model = module.Tudui().eval()
        keeps_names = list(model.state_dict()) == list(weights)
        # the spec's names are kept wherever the style keeps names and the spec gives them
        assert keeps_names == (spec_kind == "named" and style != "sequential"), style
        assert (BY_POSITION in source) == (not keeps_names), style
        model.load_state_dict(build_weights_for(model, source, weights), strict=True)
        with torch.no_grad():
            assert torch.equal(model(x), want), style


BRANCHING = """\
netspec: 1
name: Residual
input: [4, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
  - ReLU:
    name: act
  - Add:
    from: [input, act]
"""


def test_a_branching_class_names_its_unnamed_layers_too(tmp_path):
    """A network with a skip is written only as a class; its unnamed conv is self.conv, not
    self.add_module("0", ...) read back with getattr(self, "0")."""
    source = generate(BRANCHING, "class")
    assert "        self.conv = nn.Conv2d(4, 4, 3, padding=1)" in source
    assert "out = self.conv(x)" in source and 'getattr(self, "0")' not in source
    built = netspec.build(BRANCHING).eval()
    model = load_generated(source, "residual_class", tmp_path).Residual().eval()
    model.load_state_dict(build_weights_for(model, source, built.state_dict()), strict=True)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), built(x))


AUX = """\
netspec: 1
name: Aux
input: [4, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
    name: stem
  - Flatten:
    from: stem
  - Linear: {out_features: 3}
    name: aux
  - Flatten:
    from: stem
    name: flat
  - Linear: {out_features: 2}
    name: fc
outputs:
  main: fc
  aux: {from: aux, training_only: true}
"""


def test_a_named_training_only_layer_stays_training_only(tmp_path):
    """The unnamed Flatten of an aux head, named flatten1 here, still runs in training only."""
    source = generate(AUX, "class")
    assert "        if self.training:\n            out = self.flatten1(stem)" in source
    built = netspec.build(AUX)
    model = load_generated(source, "aux_class", tmp_path).Aux()
    model.load_state_dict(build_weights_for(model, source, built.state_dict()), strict=True)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        for mode in (True, False):
            got, want = model.train(mode)(x), built.train(mode)(x)
            if mode:
                assert got.keys() == want.keys() and all(
                    torch.equal(got[k], want[k]) for k in got)
            else:
                assert torch.equal(got, want)
