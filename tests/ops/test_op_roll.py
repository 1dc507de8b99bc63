"""Roll (netspec/ops/tensor.py): torch.roll(x, shifts, dims), dims counting the batch (Swin's
shifted windows); its rule against torch, and every command on it."""

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
name: Shifted
input: [7, 7, 8]
layers:
  - Linear: {out_features: 8}
    name: proj
  - Roll: {shifts: [-3, -3], dims: [1, 2]}
    name: shift
"""


@st.composite
def case(draw):
    sample = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    rank = len(sample) + 1
    n = draw(st.integers(0, 3))
    shifts = draw(st.one_of(st.integers(-5, 5), st.lists(st.integers(-5, 5), min_size=n,
                                                         max_size=n)))
    dims = draw(st.one_of(st.none(), dims_strategy(rank, st),
                          st.lists(dims_strategy(rank, st), min_size=max(n - 1, 0),
                                   max_size=n + 1)))
    return sample, shifts, dims


def as_torch(value):
    return tuple(value) if isinstance(value, list) else value


@settings(max_examples=examples(150))
@given(drawn=case(), dtype=st.sampled_from(DTYPES))
def test_roll_agrees_with_torch(drawn, dtype):
    sample, shifts, dims = drawn
    args = {"shifts": shifts, **({} if dims is None else {"dims": dims})}

    def call(x):
        return torch.roll(x, as_torch(shifts), as_torch(dims))

    (ours, our_dtype, why), (theirs, their_dtype, _) = compare("Roll", args, sample, call,
                                                               dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: torch rolls the batch (dims holding 0) or the flattened tensor (no
        # dims) without complaint, moving elements between samples; netspec refuses
        assert "batch" in why or "flattened" in why, (drawn, why)
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why)


@pytest.mark.parametrize(("args", "message", "col"), [
    ("{shifts: [-3, -3], dims: [1]}", "shifts [-3, -3] and dims [1] do not align: 2 shifts "
                                      "for 1 dim", 20),
    ("{shifts: [-3, -3], dims: [0, 2]}", "dims [0, 2] names the batch dimension", 36),
    ("{shifts: [-3, -3], dims: [1, 4]}", "dims [1, 4]: dims 4 is out of range for a 4-d "
                                         "input", 36),
    ("{shifts: 3}", "without dims (dims is None) torch rolls the flattened tensor", 11),
])
def test_refusals(args, message, col):
    (error,) = netspec.check(SPEC.replace("{shifts: [-3, -3], dims: [1, 2]}", args)).errors
    assert message in error.message and error.col == col, error.format()


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: torch.roll(m.proj(x), (-3, -3), (1, 2)), [torch.randn(2, 7, 7, 8)],
        tmp_path, "Shifted")
    assert "x = torch.roll(x, (-3, -3), (1, 2))  # -> 7×7×8" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["shift"].params == 0 and "shifts [-3, -3], dims [1, 2]" in dot


@pytest.mark.parametrize("body", [
    lambda m, x: torch.roll(m.proj(x), shifts=(-3, -3), dims=(1, 2)),
    lambda m, x: m.proj(x).roll(2, 1),
])
def test_import_round_trip(body):
    layers = import_round_trip(Calls(body, proj=nn.Linear(8, 8)), (7, 7, 8),
                               torch.randn(2, 7, 7, 8))
    assert next(iter(layers[1])) == "Roll"
