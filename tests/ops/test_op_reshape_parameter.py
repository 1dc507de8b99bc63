"""Reshape and View of a tensor without a batch dimension (a Parameter: timm's layer scale
gamma.reshape(1, -1, 1, 1) before x * it, poolformer's scale.view(1, -1, 1, 1)): the shape
is the whole shape, as torch reshapes the tensor itself; the result has no batch either and
broadcasts against one as a Parameter does.  Differential against torch (valid and invalid),
every command on it, and the import of a module spelling it."""

from __future__ import annotations

import pytest
import torch
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec
from netspec.pipeline.imported import verify

LAYER_SCALE = """\
netspec: 1
name: LayerScale
input: [6, 5, 5]
layers:
  - Conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
    name: conv
  - Parameter: {shape: [8], init: constant, value: 0.5}
    name: gamma
  - OP: {shape: [1, -1, 1, 1]}
    name: scale
  - Mul:
    from: [conv, scale]
"""


def spec_for(param: tuple, shape: list, op: str = "Reshape") -> str:
    return (f"netspec: 1\ninput: [4]\nlayers:\n  - Identity:\n    name: x\n"
            f"  - Parameter: {{shape: {list(param)}}}\n    name: p\n"
            f"  - {op}: {{shape: {shape}}}\n    from: p\n    name: r\n")


@st.composite
def parameter_and_shape(draw):
    param = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    shape = []
    for _ in range(draw(st.integers(1, 5))):
        shape.append(draw(st.sampled_from([-1, 0, 1, 2, 3, 4, 6, 12])))
    return param, shape


def torch_shape(param: tuple, shape: list, method: str) -> tuple | None:
    """torch's shape of p.reshape(shape), 0 meaning the size p has there (netspec's and
    ONNX's convention; torch itself would take 0 literally)."""
    sizes = [param[i] if s == 0 and i < len(param) else s for i, s in enumerate(shape)]
    if 0 in sizes:
        return None  # 0 past p's dims: no size to keep
    try:
        return tuple(getattr(torch.zeros(param), method)(sizes).shape)
    except RuntimeError:
        return None


@settings(max_examples=examples(150), deadline=None)
@given(case=parameter_and_shape(), op=st.sampled_from(["Reshape", "View"]))
def test_reshape_of_a_parameter_agrees_with_torch(case, op):
    param, shape = case
    expected = torch_shape(param, shape, op.lower())
    result = netspec.check(spec_for(param, shape, op))
    if expected is None:
        assert not result.ok, (param, shape)
        assert "shape" in result.errors[0].message, result.errors
    else:
        assert result.ok, (param, shape, result.errors)
        assert result.layers[-1].output_shape == expected, (param, shape)
        built = netspec.build(spec_for(param, shape, op))
        assert tuple(built(torch.zeros(2, 4)).shape) == expected


@pytest.mark.parametrize("shape, message", [
    ([-1, -1], "only one size can be inferred"),
    ([5, -1], "not divisible by the 5"),
    ([7], "holds 7 elements, but the tensor 2×3 has 6"),
    ([0, 0, 0], r"shape\[2\] is 0 .* 2 dimensions without a batch"),
])
def test_refusals_name_the_numbers(shape, message):
    result = netspec.check(spec_for((2, 3), shape))
    assert not result.ok
    assert any(__import__("re").search(message, e.message) for e in result.errors), \
        result.errors


@pytest.mark.parametrize("op", ["Reshape", "View"])
def test_layer_scale_builds_generates_and_broadcasts(op, tmp_path):
    text = LAYER_SCALE.replace("OP", op)
    result = netspec.check(text)
    assert result.ok, result.errors
    assert result.layers[-1].output_shape == (8, 5, 5)
    torch.manual_seed(0)
    model = netspec.build(text).eval()
    x = torch.randn(3, 6, 5, 5)
    with torch.no_grad():
        expected = model.conv(x) * model.gamma.reshape(1, -1, 1, 1)
        assert torch.equal(model(x), expected)
    source = generate(text)
    assert f"self.gamma.{op.lower()}(1, -1, 1, 1)" in source, source
    namespace: dict = {}
    exec(compile(source, "layer_scale.py", "exec"), namespace)
    written = namespace["LayerScale"]().eval()
    written.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(written(x), model(x))
    summary = summarize(result)
    assert summary.params == sum(p.numel() for p in model.parameters())
    assert "gamma" in to_dot(result)


class ConvNeXtScale(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.conv = nn.Conv2d(6, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.randn(8))
        self.how = how

    def forward(self, x):
        return self.how(self.conv(x), self.gamma)


@pytest.mark.parametrize("how", [
    lambda x, g: x.mul(g.reshape(1, -1, 1, 1)),  # timm's convnext
    lambda x, g: x * g.view(1, -1, 1, 1),  # poolformer's LayerScale2d
    lambda x, g: g.reshape(-1, 1, 1) + x,
])
def test_import_round_trip(how):
    model = ConvNeXtScale(how).eval()
    imported = model_to_spec(model, (6, 5, 5))
    text = dumps(imported.data)
    assert verify(imported, text).ok
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)
