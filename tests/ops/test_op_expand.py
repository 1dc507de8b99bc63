"""Expand (netspec/ops/tensor.py): x.expand(*sizes), sizes counting the batch and -1
keeping a size; its rule against torch, and every command on it."""

from __future__ import annotations

import pytest
import torch
from conftest import examples
from function_ops import (
    DTYPES,
    Calls,
    build_and_codegen_agree,
    compare,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec

SPEC = """\
netspec: 1
name: Broadcast
input: [3, 8, 8]
layers:
  - AdaptiveAvgPool2d: 1
    name: pool
  - Expand: {sizes: [-1, -1, 8, 8]}
    name: spread
"""


@st.composite
def case(draw):
    """A sample with size-1 dims and sizes: each -1, the size, or for a 1 a new size, now
    and then a wrong size, a 0, a fixed batch, one entry too few or too many."""
    sample = tuple(draw(st.lists(st.sampled_from([1, 1, 2, 3]), min_size=1, max_size=4)))
    sizes = [-1] + [draw(st.sampled_from([-1, n, 4] if n == 1 else [-1, n]))
                    for n in sample]
    how = draw(st.sampled_from(["valid", "valid", "wrong", "zero", "batch", "short", "long"]))
    i = draw(st.integers(1, len(sample)))
    if how == "wrong":
        sizes[i] = sample[i - 1] + draw(st.sampled_from([1, 2]))
    elif how == "zero":
        sizes[i] = 0
    elif how == "batch":
        sizes[0] = draw(st.sampled_from([1, 2, 3]))
    elif how == "short":
        sizes = sizes[:-1] or [-1]
    elif how == "long":
        sizes = [draw(st.sampled_from([-1, 1, 2])), *sizes]
    return sample, sizes


@settings(max_examples=examples(150))
@given(drawn=case(), dtype=st.sampled_from(DTYPES))
def test_expand_agrees_with_torch(drawn, dtype):
    sample, sizes = drawn
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        "Expand", {"sizes": sizes}, sample, lambda x: x.expand(*sizes), dtype)
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why)


@pytest.mark.parametrize(("sizes", "message"), [
    ("[-1, 4, 8, 8]", "the expanded size 4 must match the existing size 3 at non-singleton "
                      "dimension 1 (input N×3×1×1)"),
    ("[-1, 8, 8]", "sizes [-1, 8, 8] has 3 entries, fewer than the 4 dimensions"),
    ("[2, -1, 8, 8]", "sizes[0] is 2, a fixed batch size"),
    ("[-1, -1, 0, 8]", "size 0 at dimension 2 leaves the output empty"),
])
def test_refusals_point_at_sizes(sizes, message):
    (error,) = netspec.check(SPEC.replace("[-1, -1, 8, 8]", sizes)).errors
    assert message in error.message and (error.line, error.col) == (7, 21), error.format()


def test_the_list_form_is_the_sizes():
    """Expand: [-1, -1, 8, 8] reads as x.expand(-1, -1, 8, 8): the sizes are varargs."""
    listed = netspec.check(SPEC.replace("Expand: {sizes: [-1, -1, 8, 8]}",
                                        "Expand: [-1, -1, 8, 8]"))
    assert listed.ok and listed.output_shape == (3, 8, 8)


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: m.pool(x).expand(-1, -1, 8, 8), [torch.randn(2, 3, 8, 8)],
        tmp_path, "Broadcast")
    assert "x = x.expand(-1, -1, 8, 8)  # -> 3×8×8" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["spread"].params == 0 and "sizes (-1, -1, 8, 8)" in dot


@pytest.mark.parametrize("body", [
    lambda m, x: m.pool(x).expand(-1, -1, 8, 8),
    lambda m, x: m.pool(x).expand((x.shape[0], 3, 8, 8)),
    lambda m, x: (lambda y: y.expand(y.size(0), y.size(1), 8, 8))(m.pool(x)),
])
def test_import_round_trip(body):
    layers = import_round_trip(Calls(body, pool=nn.AdaptiveAvgPool2d(1)), (3, 8, 8),
                               torch.randn(2, 3, 8, 8))
    sizes = layers[1]["Expand"]["sizes"]
    assert sizes[0] == -1 and sizes[2:] == [8, 8], layers


def test_import_refuses_sizes_of_another_tensor():
    from netspec.importer.fx import ImportProblem

    body = lambda m, x: m.pool(x).expand(x.size(0), x.size(1), 8, 8)  # noqa: E731
    with pytest.raises(ImportProblem, match="expands to constant sizes and the sizes the "
                                            "input has at the same positions"):
        import_round_trip(Calls(body, pool=nn.AdaptiveAvgPool2d(1)), (3, 8, 8),
                          torch.randn(2, 3, 8, 8))
