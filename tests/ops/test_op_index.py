"""Select, Narrow, Slice (netspec/ops/index.py): x[:, 0], torch.narrow(x, dim, start,
length), x[..., start:end:step], dims counting the batch; their rules against torch, and
every command on them."""

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
from netspec.importer.fx import ImportProblem

SPEC = """\
netspec: 1
name: Tokens
input: [5, 8]
layers:
  - Linear: {out_features: 8}
    name: proj
  - Slice: {dim: -1, end: 6}
    name: first6
  - Narrow: {dim: 1, start: -4, length: 3}
    name: last
  - Select: {dim: 1, index: 0}
    name: cls
"""

samples = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
positions = st.integers(-7, 7)


@settings(max_examples=examples(150))
@given(sample=samples, data=st.data(), dtype=st.sampled_from(DTYPES))
def test_select_agrees_with_torch(sample, data, dtype):
    dim = data.draw(dims_strategy(len(sample) + 1, st))
    index = data.draw(positions)
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        "Select", {"dim": dim, "index": index}, sample,
        lambda x: torch.select(x, dim, index), dtype)
    assert (ours, our_dtype) == (theirs, their_dtype), (sample, dim, index, why)


@settings(max_examples=examples(150))
@given(sample=samples, data=st.data(), dtype=st.sampled_from(DTYPES))
def test_narrow_agrees_with_torch(sample, data, dtype):
    dim = data.draw(dims_strategy(len(sample) + 1, st))
    rank = len(sample) + 1
    size = (2, *sample)[dim % rank] if -rank <= dim < rank else 3
    # around the edges of the dim: start in [-size - 1, size + 1], length up to size + 1
    start, length = data.draw(st.integers(-size - 1, size + 1)), \
        data.draw(st.integers(-1, size + 1))
    (ours, our_dtype, why), (theirs, their_dtype, their_why) = compare(
        "Narrow", {"dim": dim, "start": start, "length": length}, sample,
        lambda x: torch.narrow(x, dim, start, length), dtype)
    assert (ours, our_dtype) == (theirs, their_dtype), (sample, dim, start, length, why)
    if ours is None and their_why.startswith("empty output"):
        assert "empty" in why  # DELIBERATE, as the oracle: an empty output is refused


def python_index(dim: int, item) -> tuple:
    """How torch code indexes one dim: x[:, :, item], x[..., item, :]; too many indices for
    the tensor raise IndexError, as torch does for an out-of-range dim."""
    if dim >= 0:
        return (slice(None),) * dim + (item,)
    return (Ellipsis, item) + (slice(None),) * (-dim - 1)


@settings(max_examples=examples(150))
@given(sample=samples, data=st.data(), dtype=st.sampled_from(DTYPES))
def test_slice_agrees_with_torch(sample, data, dtype):
    dim = data.draw(dims_strategy(len(sample) + 1, st))
    start, end = data.draw(st.none() | positions), data.draw(st.none() | positions)
    step = data.draw(st.integers(1, 3))
    args = {"dim": dim, "start": start, "end": end, "step": step}
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        "Slice", {k: v for k, v in args.items() if v is not None}, sample,
        lambda x: x[python_index(dim, slice(start, end, step))], dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: slicing the batch is refused (the oracle sees it keep the batch only
        # when the slice is whole, ':' over dim 0)
        assert dim % (len(sample) + 1) == 0 and "is the batch dimension" in why, (args, why)
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (sample, args, why)


@pytest.mark.parametrize(("old", "new", "message", "at"), [
    ("{dim: 1, index: 0}", "{dim: 1, index: 3}",
     "index 3 is out of range for dim 1 of size 3 (input N×3×6); expected a value in [-3, 2]",
     "index"),
    ("{dim: 1, index: 0}", "{dim: 0, index: 0}", "dim 0 is the batch dimension", "dim"),
    ("start: -4, length: 3", "start: 2, length: 4",
     "start 2 + length 4 exceeds the size 5 of dim 1 (input N×5×6)", "length"),
    ("start: -4, length: 3", "start: -6, length: 3",
     "start -6 is out of range for dim 1 of size 5 (input N×5×6); expected a value in [-5, 5]",
     "start"),
    ("{dim: -1, end: 6}", "{dim: -1, start: 8}",
     "8: takes no element of dim -1 of size 8 (input N×5×8): the output would be empty",
     "start"),
])
def test_refusals_point_at_the_argument(old, new, message, at):
    text = SPEC.replace(old, new)
    (error,) = netspec.check(text).errors
    line = text.splitlines()[error.line - 1]
    assert message in error.message, error.format()
    assert error.col == line.index(f"{at}: ") + len(at) + 3, error.format()


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: torch.narrow(m.proj(x)[..., :6], 1, -4, 3)[:, 0],
        [torch.randn(2, 5, 8), torch.randn(3, 9, 8)], tmp_path, "Tokens")
    assert "x = x[..., :6]  # -> 5×6" in source
    assert "x = torch.narrow(x, 1, -4, 3)  # -> 3×6" in source
    assert "x = x[:, 0]  # -> 6" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["cls"].params == rows["first6"].macs == 0
    assert "dim -1, :6" in dot and "dim 1, index 0" in dot and "dim 1, -4 +3" in dot


def test_slice_with_a_step_and_a_middle_dim(tmp_path):
    spec = SPEC.replace("{dim: -1, end: 6}", "{dim: 1, start: 1, step: 2}").replace(
        "input: [5, 8]", "input: [9, 8]")
    source = build_and_codegen_agree(
        spec, lambda m, x: torch.narrow(m.proj(x)[:, 1::2], 1, -4, 3)[:, 0],
        [torch.randn(2, 9, 8)], tmp_path, "Tokens")
    assert "x = x[:, 1::2]  # -> 4×8" in source


@pytest.mark.parametrize(("body", "entry"), [
    (lambda m, x: m.proj(x)[:, 0], {"Select": {"dim": 1, "index": 0}}),
    (lambda m, x: m.proj(x)[..., -1], {"Select": {"dim": -1, "index": -1}}),
    (lambda m, x: m.proj(x).select(2, 3), {"Select": {"dim": 2, "index": 3}}),
    (lambda m, x: m.proj(x)[..., :6], {"Slice": {"dim": -1, "end": 6}}),
    (lambda m, x: m.proj(x)[:, 1:-1:2], {"Slice": {"dim": 1, "start": 1, "end": -1,
                                                   "step": 2}}),
    (lambda m, x: m.proj(x)[:, None], {"Unsqueeze": {"dim": 1}}),
    (lambda m, x: torch.narrow(m.proj(x), 1, 1, 2), {"Narrow": {"dim": 1, "start": 1,
                                                                "length": 2}}),
])
def test_import_round_trip(body, entry):
    layers = import_round_trip(Calls(body, proj=nn.Linear(8, 8)), (5, 8), torch.randn(2, 5, 8))
    assert {k: v for k, v in layers[1].items() if k != "name"} == entry


@pytest.mark.parametrize(("body", "why"), [
    (lambda m, x: m.proj(x)[:, 0, 1:], "indexes 2 dims at once"),
    (lambda m, x: m.proj(x)[0], "indexes the batch dimension by 0"),
    (lambda m, x: m.proj(x)[1:], "indexes the batch dimension by slice"),
    (lambda m, x: m.proj(x)[:, : x.shape[1] - 1], "netspec indexes by a constant int or a "
                                                  "slice of constants"),
])
def test_import_refuses_what_it_cannot_express(body, why):
    with pytest.raises(ImportProblem, match=why):
        import_round_trip(Calls(body, proj=nn.Linear(8, 8)), (5, 8), torch.randn(2, 5, 8))
