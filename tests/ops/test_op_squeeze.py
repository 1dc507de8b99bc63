"""Squeeze and Unsqueeze (netspec/ops/tensor.py): torch.squeeze(x, dim) with dim absent,
an int or a list (torch >= 2.0), and torch.unsqueeze(x, dim), dims counting the batch; their
rules against torch, and every command on them."""

from __future__ import annotations

import pytest
import torch
from conftest import examples
from function_ops import (
    DTYPES,
    Calls,
    build_and_codegen_agree,
    compare,
    dims_strategy,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec

SPEC = """\
netspec: 1
name: Pooled
input: [3, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3}
    name: conv
  - AdaptiveAvgPool2d: 1
  - Squeeze: {dim: [2, 3]}
    name: squeeze
  - Unsqueeze: {dim: -1}
    name: unsqueeze
"""

samples = st.lists(st.sampled_from([1, 1, 2, 3]), min_size=1, max_size=4).map(tuple)


@st.composite
def squeeze_case(draw):
    sample = draw(samples)
    rank = len(sample) + 1
    dim = draw(st.one_of(st.none(), dims_strategy(rank, st),
                         st.lists(dims_strategy(rank, st), max_size=3)))
    return sample, dim


@settings(max_examples=examples(150))
@given(drawn=squeeze_case(), dtype=st.sampled_from(DTYPES))
def test_squeeze_agrees_with_torch(drawn, dtype):
    sample, dim = drawn
    args = {} if dim is None else {"dim": dim}
    call = (lambda x: torch.squeeze(x)) if dim is None else \
        (lambda x: torch.squeeze(x, tuple(dim) if isinstance(dim, list) else dim))
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare("Squeeze", args or None, sample,
                                                               call, dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: squeezing the batch is a no-op at the oracle's batch sizes (2, 3) but
        # drops the batch of a single sample; netspec refuses naming it
        dims = dim if isinstance(dim, list) else [dim]
        assert any(d % (len(sample) + 1) == 0 for d in dims) and "names the batch" in why
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why)


@settings(max_examples=examples(100))
@given(sample=samples, data=st.data(), dtype=st.sampled_from(DTYPES))
def test_unsqueeze_agrees_with_torch(sample, data, dtype):
    dim = data.draw(dims_strategy(len(sample) + 2, st))
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        "Unsqueeze", {"dim": dim}, sample, lambda x: torch.unsqueeze(x, dim), dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: a new dim in front of the batch moves it (torch accepts)
        assert dim % (len(sample) + 2) == 0 and "before the batch" in why, (dim, why)
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (sample, dim, why)


def test_squeeze_without_dim_keeps_a_batch_of_one(tmp_path):
    """torch.squeeze(x) drops a batch of one too; the built model names the sample's dims."""
    spec = SPEC.replace("Squeeze: {dim: [2, 3]}", "Squeeze:")
    result = netspec.check(spec)
    assert result.layers[2].output_shape == (4,)
    source = build_and_codegen_agree(
        spec, lambda m, x: torch.squeeze(m.conv(x).mean((2, 3), keepdim=True), (2, 3))[..., None],
        [torch.randn(1, 3, 8, 8), torch.randn(2, 3, 8, 8)], tmp_path, "Pooled")
    assert "x = torch.squeeze(x, (2, 3))" in source


@pytest.mark.parametrize(("old", "new", "message", "col"), [
    ("[2, 3]", "[2, 4]", "dim [2, 4]: dim 4 is out of range for a 4-d input", 20),
    ("[2, 3]", "[2, -2]", "dim [2, -2] names dimension 2 more than once", 20),
    ("[2, 3]", "0", "dim 0 names the batch dimension", 20),
    ("{dim: -1}", "{dim: -3}", "dim -3 inserts the new dimension before the batch", 22),
    ("{dim: -1}", "{dim: 3}", "dim 3 is out of range for the 3-d output (batch included); "
                              "expected a value in [-3, 2]", 22),
])
def test_refusals_point_at_dim(old, new, message, col):
    result = netspec.check(SPEC.replace(old, new))
    (error,) = result.errors
    assert message in error.message and error.col == col, error.format()


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: m.get_submodule("1")(m.conv(x)).squeeze((2, 3)).unsqueeze(-1),
        [torch.randn(2, 3, 8, 8)], tmp_path, "Pooled")
    assert "torch.squeeze(x, (2, 3))  # -> 4" in source
    assert "torch.unsqueeze(x, -1)  # -> 4×1" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["squeeze"].params == rows["unsqueeze"].macs == 0
    assert "dim [2, 3]" in dot and "dim -1" in dot


@pytest.mark.parametrize(("body", "entries"), [
    (lambda m, x: m.pool(m.conv(x)).squeeze(-1).squeeze(2),
     [{"Squeeze": {"dim": -1}}, {"Squeeze": {"dim": 2}}]),
    (lambda m, x: torch.squeeze(m.pool(m.conv(x)), (2, 3)), [{"Squeeze": {"dim": [2, 3]}}]),
    (lambda m, x: m.pool(m.conv(x)).squeeze(), [{"Squeeze": None}]),
    (lambda m, x: torch.unsqueeze(m.pool(m.conv(x)), 1), [{"Unsqueeze": {"dim": 1}}]),
])
def test_import_round_trip(body, entries):
    model = Calls(body, conv=nn.Conv2d(3, 4, 3), pool=nn.AdaptiveAvgPool2d(1))
    layers = import_round_trip(model, (3, 8, 8), torch.randn(2, 3, 8, 8))
    assert [{k: v for k, v in e.items() if k != "name"} for e in layers[2:]] == entries
