"""Unfold (netspec/ops/reshape.py), torch.nn.Unfold: its shape rule against torch's on drawn
sizes, kernels, dilations, paddings and strides (netspec refuses exactly when torch raises,
and otherwise infers torch's shape), the built layer's values, and an imported model
holding one round-trips."""

from __future__ import annotations

import torch
from conftest import examples
from function_ops import load_generated
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import netspec_verdict
from torch import nn

import netspec
from netspec.importer.fx import dumps, model_to_spec
from netspec.pipeline.imported import verify

small = st.integers(1, 4)
pair = st.one_of(small, st.lists(small, min_size=2, max_size=2))
padding = st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=2, max_size=2))


@st.composite
def cases(draw):
    sample = (draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    args = {"kernel_size": draw(pair)}
    for name, values in (("dilation", pair), ("padding", padding), ("stride", pair)):
        if draw(st.booleans()):
            args[name] = draw(values)
    return sample, args


def torch_args(args: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}


@settings(max_examples=examples(200), deadline=None)
@given(case=cases())
def test_unfold_s_shape_is_torch_s(case):
    sample, args = case
    layer = nn.Unfold(**torch_args(args))
    x = torch.randn(2, *sample)
    try:
        theirs = layer(x)
    except RuntimeError:
        theirs = None
    ours = netspec_verdict("Unfold", args, sample)
    assert ours.ok == (theirs is not None), (case, ours)
    if ours.ok:
        assert ours.shape == tuple(theirs.shape[1:]), case
        text = f"netspec: 1\ninput: {list(sample)}\nlayers:\n  - Unfold: {args}\n"
        assert torch.equal(netspec.build(text)(x), theirs)


def test_a_kernel_larger_than_the_input_is_refused_with_the_sizes():
    result = netspec.check("netspec: 1\ninput: [3, 4, 4]\nlayers:\n"
                           "  - Unfold: {kernel_size: 5}\n")
    (error,) = result.errors
    assert error.message == ("layer 0 (Unfold): input 4×4 with padding 0×0 holds no 5×5 "
                             "block at dilation 1×1: the blocks would be 0×0")


def test_a_two_dimensional_sample_is_refused():
    result = netspec.check("netspec: 1\ninput: [4, 4]\nlayers:\n  - Unfold: {kernel_size: 2}\n")
    assert not result.ok and "Unfold" in result.errors[0].message


class Patches(nn.Module):
    """timm's TNT PixelEmbed: a conv, then each 4×4 block a column."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 4, 3, padding=1)
        self.unfold = nn.Unfold(kernel_size=4, stride=4)

    def forward(self, x):
        return self.unfold(self.proj(x)).transpose(1, 2)


def test_a_model_unfolding_imports_and_round_trips(tmp_path):
    model = Patches().eval()
    imported = model_to_spec(model, (3, 8, 8))
    text = dumps(imported.data)
    assert "Unfold: {kernel_size: 4, stride: 4}" in text
    built = netspec.build(verify(imported, text)).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))


def test_generated_code_unfolds_as_the_built_model(tmp_path):
    result = netspec.check("netspec: 1\nname: Unfolding\ninput: [3, 8, 8]\nlayers:\n"
                           "  - Unfold: {kernel_size: 2, stride: [2, 1], padding: 1}\n")
    generated = load_generated(result, tmp_path, "Unfolding")()
    x = torch.randn(2, 3, 8, 8)
    expected = nn.Unfold(kernel_size=2, stride=(2, 1), padding=1)(x)
    assert torch.equal(generated(x), expected)
    assert torch.equal(netspec.build(result)(x), expected)
