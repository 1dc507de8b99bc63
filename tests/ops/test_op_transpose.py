"""Transpose (netspec/ops/tensor.py): torch.transpose(x, dim0, dim1), dims counting the
batch; its rule against torch, and every command on it."""

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
name: Swap
input: [5, 8]
layers:
  - Linear: {out_features: 6}
    name: proj
  - Transpose: {dim0: 1, dim1: 2}
    name: swap
  - Linear: {out_features: 3}
    name: head
"""


@st.composite
def case(draw):
    sample = tuple(draw(st.permutations(range(2, 2 + draw(st.integers(1, 4))))))
    rank = len(sample) + 1
    return sample, draw(dims_strategy(rank, st)), draw(dims_strategy(rank, st))


@settings(max_examples=examples(150))
@given(drawn=case(), dtype=st.sampled_from(DTYPES))
def test_transpose_agrees_with_torch(drawn, dtype):
    sample, d0, d1 = drawn
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        "Transpose", {"dim0": d0, "dim1": d1}, sample, lambda x: torch.transpose(x, d0, d1),
        dtype)
    rank = len(sample) + 1
    if ours is None and theirs is not None:
        # DELIBERATE, as Permute: torch swaps the batch with a sample dim of the same size
        # only by chance (the sizes here are distinct, so never); netspec refuses moving it
        pytest.fail(f"{drawn}: netspec refuses ({why})")
    if theirs is None and ours is None and -1 not in (d0 % rank - 1, d1 % rank - 1):
        assert "out of range" in why
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why)


@pytest.mark.parametrize(("args", "message", "col"), [
    ("{dim0: 1, dim1: 3}", "dim1 3 is out of range for a 3-d input (batch included); "
                           "expected a value in [-3, 2]", 32),
    ("{dim0: 0, dim1: 2}", "dim0 0 is the batch dimension: transposing it with dim 2 moves "
                           "the batch", 23),
])
def test_refusals_point_at_the_dim(args, message, col):
    result = netspec.check(SPEC.replace("{dim0: 1, dim1: 2}", args))
    (error,) = result.errors
    assert message in error.message and (error.line, error.col) == (7, col), error.format()


def test_same_dims_and_negative_dims():
    assert netspec.check(SPEC.replace("dim0: 1, dim1: 2", "dim0: -1, dim1: -2")).ok
    identity = netspec.check(SPEC.replace("dim0: 1, dim1: 2", "dim0: 0, dim1: -3"))
    assert identity.errors == [] and identity.layers[1].output_shape == (5, 6)


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: m.head(m.proj(x).transpose(1, 2)),
        [torch.randn(2, 5, 8)], tmp_path, "Swap")
    assert "x = torch.transpose(x, 1, 2)  # -> 6×5" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["swap"].params == 0 and rows["swap"].macs == 0 and "dims 1, 2" in dot


@pytest.mark.parametrize("body", [lambda m, x: m.proj(x).transpose(1, 2),
                                  lambda m, x: torch.transpose(m.proj(x), -1, 1),
                                  lambda m, x: m.proj(x).swapdims(1, 2),
                                  lambda m, x: torch.swapaxes(m.proj(x), 1, 2),
                                  lambda m, x: m.proj(x).swapaxes(axis0=-1, axis1=1)])
def test_import_round_trip(body):
    layers = import_round_trip(Calls(body, proj=nn.Linear(8, 6)), (5, 8), torch.randn(2, 5, 8))
    assert next(iter(layers[1])) == "Transpose"


def test_swapaxes_with_axes_computed_in_forward_is_refused_by_name():
    from netspec.importer.fx import ImportProblem, model_to_spec

    model = Calls(lambda m, x: m.proj(x).swapaxes(1, x.size(1) - 3), proj=nn.Linear(8, 6))
    with pytest.raises(ImportProblem, match="takes two constant axes, axis0 and axis1"):
        model_to_spec(model, (5, 8))
