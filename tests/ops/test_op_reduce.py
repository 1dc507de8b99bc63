"""Mean, Sum, Amax, Amin (netspec/ops/reduce.py): torch.mean(x, dim, keepdim) and its kin,
dim counting the batch; their shape and dtype rules against torch, and every command on
them."""

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
  - Mean: {dim: [2, 3], keepdim: true}
    name: mean
  - Amax: {dim: -1}
    name: peak
  - Sum: {dim: 2}
    name: total
"""

OPS = {"Mean": torch.mean, "Sum": torch.sum, "Amax": torch.amax, "Amin": torch.amin}


@st.composite
def case(draw):
    sample = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    rank = len(sample) + 1
    dim = draw(st.one_of(st.none(), dims_strategy(rank, st),
                         st.lists(dims_strategy(rank, st), max_size=3)))
    return sample, dim, draw(st.booleans())


def torch_call(op: str, dim, keepdim: bool):
    def call(x):
        if dim is None:
            return OPS[op](x) if op in ("Mean", "Sum") else OPS[op](x, keepdim=keepdim)
        return OPS[op](x, tuple(dim) if isinstance(dim, list) else dim, keepdim)
    return call


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=examples(20))
@given(drawn=case())
def test_reduction_agrees_with_torch(drawn, op, dtype):
    sample, dim, keepdim = drawn
    args = {"keepdim": keepdim, **({} if dim is None else {"dim": dim})}
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        op, args, sample, torch_call(op, dim, keepdim), dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: reducing the batch (dim 0, or keepdim over every dim) keeps a batch of
        # size 1 at the front, which torch's shape reads as fine when the batch is 1 only
        dims = dim if isinstance(dim, list) else [dim]
        assert any(d % (len(sample) + 1) == 0 for d in dims) and "names the batch" in why
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why)


def test_dtype_rules():
    """As torch: Mean refuses integers, Sum of int32 is int64, Amax keeps the dtype."""
    assert compare("Mean", {"dim": 1}, (3, 4), lambda x: torch.mean(x, 1), "int64")[1][0] \
        is None
    (ours, _, why), _ = compare("Mean", {"dim": 1}, (3, 4), lambda x: x, "int64")
    assert ours is None and "needs a floating-point input, but gets int64" in why
    for op, dtype, expected in [("Sum", "int32", "int64"), ("Sum", "bfloat16", "bfloat16"),
                                ("Amax", "int32", "int32"), ("Mean", "float16", "float16")]:
        (_, ours, _), (_, theirs, _) = compare(op, {"dim": 1}, (3, 4),
                                               torch_call(op, 1, False), dtype)
        assert ours == theirs == expected


@pytest.mark.parametrize(("old", "new", "message", "col"), [
    ("[2, 3], keepdim", "[2, 4], keepdim", "dim [2, 4]: dim 4 is out of range for a 4-d "
                                           "input (batch included)", 17),
    ("[2, 3], keepdim", "[0, 2], keepdim", "dim [0, 2] names the batch dimension", 17),
    ("[2, 3], keepdim", "[3, -1], keepdim", "dim [3, -1] names dimension 3 more than once",
     17),
    ("Mean: {dim: [2, 3], keepdim: true}", "Mean: {keepdim: true}",
     "without dim (dim is None) torch.mean reduces every dimension, the batch too", 11),
])
def test_refusals_point_at_dim(old, new, message, col):
    (error,) = netspec.check(SPEC.replace(old, new)).errors
    assert message in error.message and (error.line, error.col) == (7, col), error.format()


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: m.conv(x).mean((2, 3), keepdim=True).amax(-1).sum(2),
        [torch.randn(2, 3, 8, 8)], tmp_path, "Pooled")
    assert "x = torch.mean(x, (2, 3), True)  # -> 4×1×1" in source
    assert "x = torch.amax(x, -1)  # -> 4×1" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["mean"].params == rows["mean"].macs == 0
    assert "dim [2, 3], keepdim" in dot and "dim -1" in dot
    assert netspec.check(SPEC).output_shape == (4,)


@pytest.mark.parametrize(("body", "entries"), [
    (lambda m, x: m.conv(x).mean([-2, -1]), [{"Mean": {"dim": [-2, -1]}}]),
    (lambda m, x: torch.mean(m.conv(x), dim=(2, 3), keepdim=True),
     [{"Mean": {"dim": [2, 3], "keepdim": True}}]),
    (lambda m, x: m.conv(x).sum(1).amax(1).amin(-1),
     [{"Sum": {"dim": 1}}, {"Amax": {"dim": 1}}, {"Amin": {"dim": -1}}]),
])
def test_import_round_trip(body, entries):
    layers = import_round_trip(Calls(body, conv=nn.Conv2d(3, 4, 3)), (3, 8, 8),
                               torch.randn(2, 3, 8, 8))
    assert [{k: v for k, v in e.items() if k != "name"} for e in layers[1:]] == entries


def test_import_of_a_mean_over_everything_is_refused_by_check():
    from netspec.core.diagnostics import SpecError

    with pytest.raises(SpecError, match=r"torch\.mean reduces every dimension, the batch too"):
        import_round_trip(Calls(lambda m, x: m.conv(x).mean(), conv=nn.Conv2d(3, 4, 3)),
                          (3, 8, 8), torch.randn(2, 3, 8, 8))
