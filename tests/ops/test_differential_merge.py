"""Merge rules (Add, Mul, Concat, CropTo) against what torch does to batched tensors.

Hypothesis draws 2-3 input shapes, often nearly equal (so the interesting edge cases,
one differing dim or a 1 against an n, come up), and a dim for Concat. netspec's verdict and
output shape must equal torch's on tensors with a batch of 2, except for the deliberate
refusal below."""

from __future__ import annotations

import torch
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.ops import REGISTRY, Args, ShapeError
from netspec.ops import torch_side as ops

BATCH = 2


@st.composite
def related_shapes(draw, min_rank=1, max_rank=4):
    """A base sample shape and variants of it: a dim changed, set to 1, or the rank changed."""
    rank = draw(st.integers(min_rank, max_rank))
    base = draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank))
    shapes = [tuple(base)]
    for _ in range(draw(st.integers(1, 2))):
        shape = list(base)
        how = draw(st.sampled_from(["same", "dim", "one", "rank"]))
        if how in ("dim", "one") and shape:
            i = draw(st.integers(0, len(shape) - 1))
            shape[i] = 1 if how == "one" else draw(st.integers(1, 5))
        elif how == "rank":
            if draw(st.booleans()) and len(shape) > 1:
                shape.pop(draw(st.integers(0, len(shape) - 1)))
            else:
                shape.insert(0, draw(st.integers(1, 3)))
        shapes.append(tuple(shape))
    return shapes


def netspec_rule(type_name: str, shapes, **values):
    lt = REGISTRY[type_name]
    filled = {a.name: values.get(a.name, a.default) for a in lt.args}
    a = Args(filled, set(values), [f"input {i}" for i in range(len(shapes))])
    try:
        return tuple(lt.rule(a, list(shapes))), None
    except ShapeError as exc:
        return None, str(exc)


def torch_result(fn, shapes):
    tensors = [torch.zeros(BATCH, *s) for s in shapes]
    try:
        out = fn(tensors)
    except (RuntimeError, IndexError, ValueError):
        return None
    return tuple(out.shape[1:]) if out.shape[:1] == (BATCH,) else "batch changed"


def pairwise(op):
    def apply(tensors):
        out = tensors[0]
        for t in tensors[1:]:
            out = op(out, t)
        return out

    return apply


@settings(max_examples=examples(150))
@given(shapes=related_shapes(), type_name=st.sampled_from(["Add", "Mul"]))
def test_add_and_mul_agree_with_torch(shapes, type_name):
    ours, why = netspec_rule(type_name, shapes)
    op = REGISTRY[type_name]
    theirs = torch_result(pairwise(ops.function(op)), shapes)
    if ours is not None:
        assert theirs == ours, (shapes, ours, theirs)
        # the in-place form build.py uses when the first input's shape is the output's
        if ours == shapes[0]:
            assert torch_result(pairwise(ops.inplace_function(op)), shapes) == ours
    elif theirs is not None:
        # DELIBERATE: torch broadcasts different ranks by prepending 1s, which for batched
        # tensors lines a sample dim up with the batch; netspec asks for equal ranks.
        assert len({len(s) for s in shapes}) > 1, (shapes, why, theirs)
        assert "shapes must be equal" in why


@settings(max_examples=examples(150))
@given(shapes=related_shapes(), data=st.data())
def test_concat_agrees_with_torch(shapes, data):
    rank = len(shapes[0]) + 1
    dim = data.draw(st.integers(-rank - 1, rank))
    ours, why = netspec_rule("Concat", shapes, dim=dim)
    theirs = torch_result(lambda ts: torch.cat(ts, dim), shapes)
    if ours is not None:
        assert theirs == ours, (shapes, dim, ours, theirs)
    elif theirs is not None:
        # DELIBERATE: dim 0 (or -rank) joins batches, which torch allows and netspec refuses.
        assert theirs == "batch changed", (shapes, dim, why, theirs)


@settings(max_examples=examples(80))
@given(shapes=related_shapes(min_rank=2, max_rank=4))
def test_crop_to_agrees_with_torch(shapes):
    shapes = shapes[:2]
    ours, why = netspec_rule("CropTo", shapes)
    theirs = torch_result(lambda ts: ops.crop_to(*ts), shapes)
    if ours is not None:
        assert theirs == ours, (shapes, ours, theirs)
    else:
        # torch's narrow refuses a larger target; netspec also refuses different ranks,
        # where crop_to would index past the smaller tensor's dims
        assert theirs is None or len(shapes[0]) != len(shapes[1]), (shapes, why, theirs)


def test_crop_to_takes_the_center():
    x = torch.arange(49).reshape(1, 1, 7, 7)  # x[..., r, c] == 7 * r + c
    cropped = ops.crop_to(x, torch.zeros(1, 1, 4, 4))
    assert cropped.shape == (1, 1, 4, 4)
    assert cropped[0, 0, 0, 0] == 7 * 1 + 1  # rows and columns 1..4 of 0..6
    assert cropped[0, 0, -1, -1] == 7 * 4 + 4
    odd = ops.crop_to(torch.arange(8).reshape(1, 1, 8), torch.zeros(1, 1, 5))
    assert odd.tolist() == [[[1, 2, 3, 4, 5]]]  # (8 - 5) // 2 = 1 from the start
