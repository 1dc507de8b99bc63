"""Sub, an elementwise merge of two inputs, added by its declaration alone
(netspec/ops/merge.py): its rule against torch, and every command on it."""

from __future__ import annotations

import importlib.util
import sys

import torch
from conftest import examples
from hypothesis import given, settings
from test_differential_merge import netspec_rule, related_shapes, torch_result
from torch import nn

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec
from netspec.ops import REGISTRY, torch_side

SPEC = """\
netspec: 1
name: SubNet
input: [3, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
    name: a
  - Conv2d: {out_channels: 4, kernel_size: 1}
    name: b
    from: input
  - Sub:
    from: [a, b]
    name: diff
"""


@settings(max_examples=examples(150))
@given(shapes=related_shapes())
def test_sub_agrees_with_torch(shapes):
    """Two drawn shapes: netspec's verdict and shape equal torch's x - y, and the in-place
    form build uses (x -= y) where the output has the first input's shape."""
    pair = shapes[:2] if len(shapes) > 1 else shapes * 2
    ours, why = netspec_rule("Sub", pair)
    theirs = torch_result(lambda t: torch_side.function(REGISTRY["Sub"])(*t), pair)
    if ours is None and theirs is not None:
        # DELIBERATE, as for Add and Mul: torch broadcasts different ranks by prepending 1s,
        # which for batched tensors lines a sample dim up with the batch
        assert len({len(s) for s in pair}) > 1 and "shapes must be equal" in why, (pair, why)
        return
    assert theirs == ours, (pair, ours, theirs)
    if ours is not None and ours == pair[0]:
        x, y = torch.randn(2, *pair[0]), torch.randn(2, *pair[1])
        expected = x - y
        torch_side.inplace_function(REGISTRY["Sub"])(x, y)
        assert torch.equal(x, expected)


def test_sub_is_first_minus_second():
    model = netspec.build(SPEC).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model.a(x) - model.b(x))


def test_sub_takes_exactly_two_inputs():
    three = netspec.check(SPEC.replace("from: [a, b]", "from: [a, b, a]"))
    assert [d.message for d in three.errors] == [
        "layer 2 'diff' (Sub): Sub takes two inputs (what to subtract from, and what to "
        "subtract), got 3"]
    none = netspec.check(SPEC.replace("    from: [a, b]\n", ""))
    assert none.errors[0].message.endswith("Sub takes two inputs (what to subtract from, and "
                                           "what to subtract): write from: [a, b], or other: "
                                           "a number")
    mismatch = netspec.check(SPEC.replace("out_channels: 4, kernel_size: 1",
                                          "out_channels: 5, kernel_size: 1"))
    assert "cannot subtract 4×8×8 from 'a' and 5×8×8 from 'b'" in mismatch.errors[0].message


def test_summary_render_and_codegen(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok and result.output_shape == (4, 8, 8)
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["diff"].params == 0 and rows["diff"].macs == 0
    assert "−" in to_dot(result)
    source = generate(result, "class")
    assert "out = a - b" in source
    path = tmp_path / "subnet.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("subnet", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["subnet"] = module
    spec.loader.exec_module(module)
    generated, built = module.SubNet().eval(), netspec.build(result).eval()
    generated.load_state_dict(built.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(generated(x), built(x))


class Difference(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.a(x) - self.b(x)


def test_import_round_trip():
    reference = Difference().eval()
    imported = model_to_spec(reference, (3, 8, 8))
    assert imported.data["layers"][-1] == {"Sub": None, "name": "sub", "from": ["a", "b"]}
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    from netspec.cli import main

    spec = tmp_path / "subnet.yaml"
    spec.write_text(SPEC)
    assert main(["export", str(spec), "-o", str(tmp_path / "subnet.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out
