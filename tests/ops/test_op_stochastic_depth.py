"""StochasticDepth, torchvision's module op (netspec/ops/dropout.py): its rule against
torchvision.ops.StochasticDepth, its training draws against torchvision's, and every
command on it (build to torchvision's class, codegen importing it, summary, render, import
of the module and of the functional torchvision.ops.stochastic_depth)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import examples
from generated import load_generated
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import netspec_verdict, torch_verdict
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.ops import StochasticDepth, stochastic_depth

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec

SPEC = """\
netspec: 1
name: Residual
input: [4, 6, 6]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
    name: conv
  - StochasticDepth: {p: 0.2, mode: row}
    name: drop
  - Add:
    from: [drop, input]
    name: add
"""

CHAIN = """\
netspec: 1
name: Chain
input: [5]
layers:
  - Linear: {out_features: 3}
  - StochasticDepth: [0.25, MODE]
"""

FLOATS = ["float32", "float64", "float16", "bfloat16"]
INTS = ["int64", "int32"]


@st.composite
def cases(draw):
    """A sample of rank 1 to 4, p mostly in [0, 1] (sometimes outside), mode mostly valid,
    any input dtype; written as keywords or as torchvision's positional list."""
    sample = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    p = draw(st.sampled_from([0.0, 0.5, 1.0, 0, 1]) | st.floats(0, 1)
             | st.floats(-2, 3, allow_nan=False))
    mode = draw(st.sampled_from(["row", "row", "batch", "batch", "rows", "Batch", ""]))
    dtype = draw(st.sampled_from(FLOATS + INTS))
    return sample, {"p": p, "mode": mode}, dtype, draw(st.booleans())


@settings(max_examples=examples(150))
@given(case=cases())
def test_stochastic_depth_agrees_with_torchvision(case):
    """netspec's verdict (the whole check: schema, rule, dtype) equals torchvision's module
    run in training on zeros at two batch sizes; the shape is kept; no parameters."""
    sample, kwargs, dtype, positional = case
    theirs = torch_verdict("StochasticDepth", kwargs, sample, dtype)
    args = [kwargs["p"], kwargs["mode"]] if positional else kwargs
    ours = netspec_verdict("StochasticDepth", args, sample, dtype)
    if theirs.ok and not ours.ok and dtype in INTS:
        # DELIBERATE, as for Dropout: integer tensors are refused; torchvision's training
        # forward runs on them only where it is degenerate (p 0: the identity, p 1: zeros)
        assert kwargs["p"] in (0, 1) and "floating-point" in ours.why, (case, ours)
        return
    assert ours.ok == theirs.ok, (case, ours, theirs)
    if ours.ok:
        assert ours.shape == theirs.shape == sample and ours.params == theirs.params == 0


def test_refusals_name_the_argument():
    def errors(text):
        return [(d.message, d.line) for d in netspec.check(text).errors]

    [(message, line)] = errors(SPEC.replace("mode: row", "mode: rows"))
    assert "mode" in message and "'row'" in message and line == 7
    [(message, line)] = errors(SPEC.replace("p: 0.2", "p: 1.5"))
    assert "p" in message and line == 7
    [(message, _)] = errors(SPEC.replace("{p: 0.2, mode: row}", "0.2"))
    assert "mode" in message
    ints = netspec.check(CHAIN.replace("MODE", "row").replace("  - Linear: {out_features: 3}\n",
                                                              "").replace("[5]", "{shape: [5], "
                                                                          "dtype: int64}"))
    assert "floating-point" in ints.errors[0].message


def _built(mode: str) -> nn.Module:
    return netspec.build(CHAIN.replace("MODE", mode))


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_training_draws_equal_torchvisions(mode):
    """With the same seed the built layer zeroes exactly what torchvision's function does;
    over many draws rows (row) or whole batches (batch) are zeroed at rate p, the rest
    scaled by 1/(1-p); in eval it is the identity."""
    model = _built(mode).train()
    drop = model[1]
    assert type(drop) is StochasticDepth and (drop.p, drop.mode) == (0.25, mode)
    x = torch.randn(16, 5)
    for seed in range(5):
        torch.manual_seed(seed)
        ours = model(x)
        torch.manual_seed(seed)
        assert torch.equal(ours, stochastic_depth(model[0](x), 0.25, mode, True))
    ones = torch.ones(64, 3)
    zeroed_rows, zeroed_batches, mixed = 0, 0, 0
    draws = 200
    for _ in range(draws):
        y = drop(ones)
        assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
        rows = (y[:, 0] == 0).sum().item()
        assert all(len(set(r.tolist())) == 1 for r in y)  # a row is kept or zeroed whole
        zeroed_rows += rows
        zeroed_batches += rows == 64
        mixed += 0 < rows < 64
    if mode == "row":
        assert abs(zeroed_rows / (64 * draws) - 0.25) < 0.02 and mixed > draws * 0.9
    else:
        assert abs(zeroed_batches / draws - 0.25) < 0.12 and mixed == 0
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model[0](x))


def test_build_codegen_summary_render(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok and result.output_shape == (4, 6, 6)
    built = netspec.build(result)
    assert type(built.drop) is StochasticDepth
    source = generate(result, "class")
    assert "from torchvision.ops import StochasticDepth\n" in source
    assert 'self.drop = StochasticDepth(0.2, "row")' in source
    generated = load_generated(source, "residual_sd", tmp_path).Residual()
    assert type(generated.drop) is StochasticDepth
    generated.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(8, 4, 6, 6)
    for mode in ("eval", "train"):
        getattr(generated, mode)()
        getattr(built, mode)()
        torch.manual_seed(1)
        expected = built(x)
        torch.manual_seed(1)
        assert torch.equal(generated(x), expected), mode
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["drop"].params == 0 and rows["drop"].macs == 0
    with FlopCounterMode(display=False) as counter:
        built.train()(x[:1])
    assert counter.get_total_flops() == 2 * summarize(result).macs
    dot = to_dot(result)
    assert "StochasticDepth" in dot and "p 0.2, row" in dot


@pytest.mark.parametrize("style", ["sequential", "ordereddict", "add-module"])
def test_sequential_styles_import_it_too(style, tmp_path):
    result = netspec.check(CHAIN.replace("MODE", "batch"))
    source = generate(result, style)
    assert "from torchvision.ops import StochasticDepth\n" in source
    generated = load_generated(source, f"chain_{style.replace('-', '_')}", tmp_path).Chain()
    assert type(generated[1]) is StochasticDepth and generated[1].mode == "batch"


class Block(nn.Module):
    """A residual branch dropped by torchvision's module or by its function."""

    def __init__(self, functional: bool):
        super().__init__()
        self.functional = functional
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        if not functional:
            self.drop = StochasticDepth(0.3, "batch")

    def forward(self, x):
        y = self.conv(x)
        y = stochastic_depth(y, 0.3, "batch", self.training) if self.functional else self.drop(y)
        return y + x


@pytest.mark.parametrize("functional", [False, True])
def test_import_round_trip(functional):
    reference = Block(functional)
    imported = model_to_spec(reference, (4, 6, 6))
    name = "stochastic_depth" if functional else "drop"
    assert imported.data["layers"][1] == {"StochasticDepth": {"p": 0.3, "mode": "batch"},
                                          "name": name}
    model = netspec.build(dumps(imported.data))
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(8, 4, 6, 6)
    for mode in ("eval", "train"):
        getattr(model, mode)()
        getattr(reference, mode)()
        torch.manual_seed(2)
        expected = reference(x)
        torch.manual_seed(2)
        assert torch.equal(model(x), expected), mode


def test_efficientnet_b0_round_trips():
    """torchvision's EfficientNet-B0, whose MBConv blocks drop their branch with
    StochasticDepth: imported, built, its weights load strictly, same outputs."""
    torch.manual_seed(0)
    reference = torchvision.models.efficientnet_b0().eval()
    imported = model_to_spec(reference, (3, 64, 64))
    text = dumps(imported.data)
    # the 9 of 16 blocks with a residual connection (the others never call theirs)
    assert text.count("StochasticDepth: {p: ") == 9
    model = netspec.build(text).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    assert type(model.features[2][1].stochastic_depth) is StochasticDepth
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    from netspec.cli import main

    spec = tmp_path / "residual.yaml"
    spec.write_text(SPEC)
    assert main(["export", str(spec), "-o", str(tmp_path / "residual.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out
