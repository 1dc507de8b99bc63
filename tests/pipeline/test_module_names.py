"""Entry names are module names in state_dict keys: identifiers, or identifiers joined by
'-' as torchvision's RegNet names its blocks (trunk_output.block1.block1-0).  Check, build,
every code style and the importer keep them as written, so a reference state_dict loads
without renaming."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from generated import build_weights_for
from torch import nn

import netspec
from netspec.emit.codegen import generate

BRANCHING = """\
netspec: 1
name: Dashes
input: [3, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
    name: stem-conv
  - layers:
      - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
        name: block1-0
      - ReLU
      - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
        name: block1-1
    name: block1
  - Add:
    from: [block1, stem-conv]
    name: add-1
  - Conv2d: {out_channels: 2, kernel_size: 1}
    repeat: {count: 2, name: "proj-{i}"}
  - Flatten
  - Linear: {out_features: 5}
    name: stem_conv
"""

CHAIN = """\
netspec: 1
name: DashChain
input: [3, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3}
    name: block1-0
  - ReLU:
    name: act-1
  - Flatten:
    name: flat
  - Linear: {out_features: 5}
    name: head-fc
"""


def load_generated(source: str, class_name: str, tmp_path, tag: str) -> nn.Module:
    path = tmp_path / f"generated_{tag}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"generated_{tag}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, class_name)()


def test_dashed_names_check_and_keep_their_keys():
    result = netspec.check(BRANCHING)
    assert result.ok, result.errors
    keys = list(netspec.build(BRANCHING).state_dict())
    assert "stem-conv.weight" in keys and "block1.block1-0.weight" in keys
    assert "3.proj-0.weight" in keys and "3.proj-1.bias" in keys
    assert "stem_conv.weight" in keys  # a different name from stem-conv


@pytest.mark.parametrize("spec, styles", [
    (BRANCHING, ("class",)),
    (CHAIN, ("class", "ordereddict", "add-module")),
])
def test_generated_code_matches_the_built_model(spec, styles, tmp_path):
    model = netspec.build(spec).eval()
    x = torch.randn(2, 3, 8, 8)
    name = netspec.check(spec).network.name
    for style in styles:
        source = generate(spec, style)
        compile(source, style, "exec")
        written = load_generated(source, name, tmp_path, style.replace("-", "_")).eval()
        # the spec's names as written (block1-0, proj-0); a top-level entry it leaves
        # unnamed (3) is named in class style, the file says so, the weights load by position
        pairs = list(zip(model.state_dict(), written.state_dict(), strict=True))
        assert all(a == b or (a.split(".")[0].isdigit() and a.split(".")[1:] ==
                              b.split(".")[1:]) for a, b in pairs), style
        written.load_state_dict(build_weights_for(written, source, model.state_dict()),
                                strict=True)
        with torch.no_grad():
            assert torch.equal(written(x), model(x)), style


@pytest.mark.parametrize("name, fragment", [
    ("conv.one", "it contains \".\""),
    ("-conv", "a '-' may only join two parts"),
    ("conv-", "a '-' may only join two parts"),
    ("a--b", "a '-' may only join two parts"),
    ("1-a", "it starts with a digit"),
])
def test_names_that_cannot_be_module_names(name, fragment):
    result = netspec.check(CHAIN.replace("head-fc", f'"{name}"'))
    assert len(result.errors) == 1, result.errors
    assert "is not a module name" in result.errors[0].message
    assert fragment in result.errors[0].message


def test_from_takes_a_dashed_name_and_did_you_mean_finds_it():
    bad = BRANCHING.replace("from: [block1, stem-conv]", "from: [block1, stem-cnv]")
    result = netspec.check(bad)
    assert len(result.errors) == 1
    assert "did you mean 'stem-conv'" in result.errors[0].message


class RegNetLike(nn.Module):
    """Children named as torchvision's RegNet names them (block1-0)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block1 = nn.Sequential()
        self.block1.add_module("block1-0", nn.Conv2d(4, 4, 3, padding=1))
        self.block1.add_module("block1-1", nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 5))

    def forward(self, x):
        return self.head(self.block1(self.stem(x)))


def test_import_keeps_dashed_children_weight_for_weight():
    from netspec.importer.fx import dumps, model_to_spec

    reference = RegNetLike().eval()
    imported = model_to_spec(reference, (3, 8, 8))
    text = dumps(imported.data)
    assert "block1-0" in text
    model = netspec.build(text).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
