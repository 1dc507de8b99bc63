"""Parameter, a learnable tensor used in forward (class token, position embedding, layer
scale): no input, no batch dimension, broadcast against a batch exactly as torch does; every
command on it, and the import of a module that uses its own parameters."""

from __future__ import annotations

import importlib.util
import sys

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

SPEC = """\
netspec: 1
name: TinyViT
input: [3, 32, 32]
layers:
  - Conv2d: {out_channels: 16, kernel_size: 8, stride: 8}
    name: conv_proj
  - Flatten: {start_dim: 2}
  - Permute: [0, 2, 1]
    name: tokens
  - Parameter: {shape: [1, 16, 16], init: normal, std: 0.02}
    name: pos_embedding
  - Add:
    from: [tokens, pos_embedding]
    name: embedded
  - Parameter: {shape: [16], init: constant, value: 0.5}
    name: layer_scale
  - Mul:
    from: [layer_scale, embedded]
  - LayerNorm:
    name: norm
  - Flatten:
  - Linear: {out_features: 10}
    name: head
"""


def spec_for(sample: tuple, param: tuple, op: str) -> str:
    return (f"netspec: 1\ninput: {list(sample)}\nlayers:\n  - Identity:\n    name: x\n"
            f"  - Parameter: {{shape: {list(param)}}}\n    name: p\n"
            f"  - {op}:\n    from: [x, p]\n")


@st.composite
def sample_and_parameter(draw):
    sample = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    rank = draw(st.integers(1, len(sample) + 2))
    full = (draw(st.sampled_from([1, 2, 3])),) + sample  # the batch's place, then the sample
    param = []
    for k in range(rank):  # aligned from the right, as torch broadcasts
        size = full[-1 - k] if k < len(full) else draw(st.integers(1, 3))
        param.insert(0, draw(st.sampled_from([size, 1, size + 1])))
    return sample, tuple(param)


@settings(max_examples=examples(150), deadline=None)
@given(case=sample_and_parameter(), op=st.sampled_from(["Add", "Mul", "Sub", "Div", "Pow"]))
def test_broadcast_against_the_batch_agrees_with_torch(case, op):
    """netspec accepts exactly when torch broadcasts x (N, *sample) with the parameter for
    every batch size, and gives torch's per-sample shape."""
    sample, param = case
    fn = {"Add": torch.add, "Mul": torch.mul, "Sub": torch.sub, "Div": torch.div,
          "Pow": torch.pow}[op]
    shapes = []
    for batch in (2, 3):
        try:
            shapes.append(tuple(fn(torch.zeros(batch, *sample), torch.zeros(param)).shape))
        except RuntimeError:
            shapes.append(None)
    result = netspec.check(spec_for(sample, param, op))
    if None in shapes or shapes[0][0] != 2 or shapes[1][0] != 3:
        assert not result.ok, (sample, param, shapes)
    else:
        assert result.ok, (sample, param, result.errors)
        assert result.layers[-1].output_shape == shapes[0][1:], (sample, param)


def load_generated(source: str, class_name: str, tmp_path) -> nn.Module:
    path = tmp_path / "generated_parameter.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("generated_parameter", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, class_name)()


def test_build_codegen_and_summary(tmp_path):
    torch.manual_seed(0)
    model = netspec.build(SPEC).eval()
    assert list(model.state_dict())[:2] == ["pos_embedding", "layer_scale"]
    assert isinstance(model.pos_embedding, nn.Parameter)
    assert torch.equal(model.layer_scale, torch.full((16,), 0.5))
    source = generate(SPEC)
    assert "self.pos_embedding = nn.Parameter(torch.empty((1, 16, 16)).normal_(std=0.02))" \
        in source
    assert "tokens + self.pos_embedding" in source
    torch.manual_seed(0)
    written = load_generated(source, "TinyViT", tmp_path).eval()
    # the same initialisation, drawn in the same order: equal tensors from the same seed
    for (k, a), (j, b) in zip(written.state_dict().items(), model.state_dict().items(),
                              strict=True):
        assert k == j and torch.equal(a, b), k
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(written(x), model(x))
    summary = summarize(netspec.check(SPEC))
    assert summary.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("init, args, check", [
    ("zeros", {}, lambda t: torch.equal(t, torch.zeros_like(t))),
    ("ones", {}, lambda t: torch.equal(t, torch.ones_like(t))),
    ("constant", {"value": 2.5}, lambda t: torch.equal(t, torch.full_like(t, 2.5))),
    ("uniform", {"a": -0.5, "b": 0.5}, lambda t: t.min() >= -0.5 and t.max() <= 0.5),
    ("trunc_normal", {"std": 0.02}, lambda t: t.abs().max() <= 2.0 and t.std() < 0.05),
    ("normal", {"mean": 3.0, "std": 0.1}, lambda t: abs(t.mean() - 3.0) < 0.1),
])
def test_every_init(init, args, check, tmp_path):
    extra = "".join(f", {k}: {v}" for k, v in args.items())
    text = spec_for((64,), (64,), "Add").replace("{shape: [64]}",
                                                   f"{{shape: [64], init: {init}{extra}}}")
    torch.manual_seed(1)
    built = netspec.build(text)
    assert check(built.p.detach()), init
    torch.manual_seed(1)
    written = load_generated(generate(text), "Net", tmp_path)
    assert torch.equal(written.p, built.p), init  # codegen draws the same tensor


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("  - Mul:\n    from: [layer_scale, embedded]\n", ""),
     "LayerNorm takes a batch of samples, but 'layer_scale' has no batch dimension"),
    (lambda s: s.replace("[1, 16, 16], init: normal", "[4, 16, 16], init: normal"),
     "meets the batch dimension with size 4"),
    (lambda s: s.replace("init: constant, value: 0.5", "init: ones, value: 0.5"),
     "value is not used by init 'ones'"),
    (lambda s: s.replace("    name: layer_scale\n", "    name: layer_scale\n    from: tokens\n"),
     "Parameter takes no input"),
])
def test_refusals_say_why(edit, message):
    text = edit(SPEC)
    assert text != SPEC
    result = netspec.check(text)
    assert not result.ok
    assert any(message in d.message for d in result.errors), [d.message for d in result.errors]


def test_render_draws_no_edge_into_a_parameter():
    dot = to_dot(netspec.check(SPEC))
    assert "Parameter" in dot
    ids = [line.split()[0] for line in dot.splitlines() if "pos_embedding" in line
           and "label=" in line]
    assert ids, dot
    assert not any(f"-> {ids[0]}" in line for line in dot.splitlines())


class UsesItsParameters(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_proj = nn.Conv2d(3, 16, 8, stride=8)
        self.pos_embedding = nn.Parameter(torch.empty(1, 16, 16).normal_(std=0.02))
        self.gamma = nn.Parameter(torch.ones(16) * 1e-6)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(256, 10)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).permute(0, 2, 1)
        x = x + self.pos_embedding
        x = self.gamma * x
        return self.head(self.norm(x).flatten(1))


def test_import_round_trip_weight_for_weight():
    reference = UsesItsParameters().eval()
    text = dumps(model_to_spec(reference, (3, 32, 32)).data)
    assert "Parameter: {shape: [1, 16, 16]}" in text and "name: gamma" in text
    model = netspec.build(text).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_onnx_and_torchscript_export_verified(tmp_path):
    from netspec.emit.export import export

    for fmt, name in (("onnx", "vit.onnx"), ("torchscript", "vit.ts")):
        report = export(SPEC, fmt, tmp_path / name)
        assert report.ok and report.differences, (fmt, report.differences)
        assert max(report.differences.values()) <= 1e-5


def test_a_frozen_parameter_is_non_trainable_everywhere(tmp_path):
    text = SPEC.replace("init: constant, value: 0.5", "init: constant, value: 0.5, "
                        "requires_grad: false")
    model = netspec.build(text)
    assert not model.layer_scale.requires_grad
    summary = summarize(netspec.check(text))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert summary.trainable_params == trainable == summary.params - 16
    written = load_generated(generate(text), "TinyViT", tmp_path)
    assert not written.layer_scale.requires_grad
