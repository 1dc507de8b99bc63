"""Pad (netspec/ops/padding.py): torch.nn.functional.pad(x, pad, mode, value), pad pairs
last dim first; its rule for every mode and rank against torch, and every command on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
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
name: Padded
input: [3, 8, 8]
layers:
  - Pad: {pad: [1, 1, 2, 2], mode: reflect}
    name: reflect
  - Conv2d: {out_channels: 4, kernel_size: 3}
    name: conv
  - Pad: {pad: [0, 1, -1, 0], value: 0.5}
    name: shift
"""


@st.composite
def case(draw):
    """A sample of 1 to 4 dims and 0 to 5 pairs (sometimes an odd count), sides around the
    sizes (negative crops, past the size for reflect's and circular's limits)."""
    sample = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    pairs = draw(st.integers(0, min(len(sample) + 2, 5)))
    pad = draw(st.lists(st.integers(-5, 5), min_size=2 * pairs, max_size=2 * pairs))
    if draw(st.integers(0, 9)) == 0:
        pad.append(draw(st.integers(0, 2)))
    value = draw(st.sampled_from([None, None, 0, 0.5]))
    return sample, pad, value


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@settings(max_examples=examples(120))
@given(drawn=case(), dtype=st.sampled_from(DTYPES))
def test_pad_agrees_with_torch(drawn, mode, dtype):
    sample, pad, value = drawn
    args = {"pad": pad, "mode": mode, **({} if value is None else {"value": value})}
    (ours, our_dtype, why), (theirs, their_dtype, their_why) = compare(
        "Pad", args, sample, lambda x: F.pad(x, tuple(pad), mode, value), dtype)
    if ours is None and theirs is not None:
        # DELIBERATE, as the padding modules: a batch pair (1, -1) keeps the batch size but
        # moves every sample into the next one's place; a circular wrap wider than what a
        # crop leaves reads past the cropped data (torch raises only for a batch of one)
        assert "pads the batch dimension" in why or "too few to wrap" in why, (drawn, why)
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why, their_why)


@pytest.mark.parametrize(("pad", "message", "at"), [
    ("{pad: [1, 1, 2, 2], mode: reflect}", "reflect padding (2, 2) must be smaller than the "
                                           "input size", None),
    ("{pad: [1, 1, 8, 8], mode: reflect}", "reflect padding (8, 8) must be smaller than the "
                                           "input size 8 it pads", "pad"),
    ("{pad: [1, 1, 1], mode: reflect}", "pad [1, 1, 1] has 3 entries; it holds (before, "
                                        "after) pairs", "pad"),
    ("{pad: [1, 1, 2, 2], mode: circular, value: 1.0}", "mode 'circular' takes no value "
                                                        "(value is 1.0)", "value"),
    ("{pad: [1, 1, 1, 1, 1, 1, 1, 1], mode: replicate}",
     "mode 'replicate' pads the last 1, 2 or 3 dims of a sample with that many dims or one "
     "more; pad has 4 pairs for a sample of 3×8×8", "pad"),
    ("{pad: [0, 0, 0, 0, 0, 0, 1, 0]}", "its last pair (1, 0) pads the batch dimension", "pad"),
])
def test_refusals_point_at_the_argument(pad, message, at):
    text = SPEC.replace("{pad: [1, 1, 2, 2], mode: reflect}", pad)
    result = netspec.check(text)
    if at is None:  # the original spec: fine
        assert result.ok and message
        return
    (error,) = result.errors
    line = text.splitlines()[error.line - 1]
    assert message in error.message, error.format()
    assert error.col == line.index(f"{at}: ") + len(at) + 3, error.format()


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: F.pad(m.conv(F.pad(x, (1, 1, 2, 2), "reflect")), (0, 1, -1, 0),
                                 value=0.5),
        [torch.randn(2, 3, 8, 8)], tmp_path, "Padded")
    assert 'x = nn.functional.pad(x, (1, 1, 2, 2), "reflect")  # -> 3×12×10' in source
    assert 'x = nn.functional.pad(x, (0, 1, -1, 0), "constant", 0.5)  # -> 4×9×9' in source
    rows, dot = summary_and_render(SPEC)
    assert rows["shift"].params == rows["reflect"].macs == 0
    assert "pad (1, 1, 2, 2), reflect" in dot


@pytest.mark.parametrize(("body", "entry"), [
    (lambda m, x: F.pad(m.conv(x), (1, 1, 2, 2), "reflect"),
     {"Pad": {"pad": [1, 1, 2, 2], "mode": "reflect"}}),
    (lambda m, x: F.pad(m.conv(x), [0, 1], value=-1.0), {"Pad": {"pad": [0, 1], "value": -1.0}}),
    (lambda m, x: nn.functional.pad(m.conv(x), pad=(2, 2, 2, 2), mode="circular"),
     {"Pad": {"pad": [2, 2, 2, 2], "mode": "circular"}}),
])
def test_import_round_trip(body, entry):
    layers = import_round_trip(Calls(body, conv=nn.Conv2d(3, 4, 3)), (3, 8, 8),
                               torch.randn(2, 3, 8, 8))
    assert {k: v for k, v in layers[1].items() if k != "name"} == entry
