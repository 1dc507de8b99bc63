"""ChannelShuffle's second spelling (netspec/ops/reshape.py): torchvision's ShuffleNetV2
shuffles with its own torchvision.models.shufflenetv2.channel_shuffle (x.size(), view,
transpose, view), which the importer reads as ChannelShuffle.  Against that function:
netspec refuses exactly when it raises, and the built layer gives its values."""

from __future__ import annotations

import pytest
import torch
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import netspec_verdict
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle

import netspec
from netspec.importer.fx import dumps, model_to_spec
from netspec.pipeline.imported import verify


@st.composite
def cases(draw):
    """A 4-d sample (C×H×W) whose channels are divisible by groups or not, groups 1..5."""
    groups = draw(st.integers(1, 5), label="groups")
    if draw(st.booleans(), label="divisible"):
        channels = groups * draw(st.integers(1, 4))
    else:
        channels = draw(st.integers(1, 12))
    height, width = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return (channels, height, width), groups


@settings(max_examples=examples(100), deadline=None)
@given(case=cases())
def test_channel_shuffle_agrees_with_torchvision_s(case):
    sample, groups = case
    x = torch.randn(2, *sample)
    try:
        theirs = channel_shuffle(x, groups)
    except RuntimeError:
        theirs = None
    ours = netspec_verdict("ChannelShuffle", {"groups": groups}, sample)
    assert ours.ok == (theirs is not None), (case, ours)
    if ours.ok:
        built = netspec.build(f"netspec: 1\ninput: {list(sample)}\nlayers:\n"
                              f"  - ChannelShuffle: {{groups: {groups}}}\n")
        assert torch.equal(built(x), theirs)


class Shuffled(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 1)

    def forward(self, x):
        return channel_shuffle(self.conv(x), 3)


def _lookalike(x, groups):
    return x * groups


class LookAlike(Shuffled):
    """A function of the same name from elsewhere is not torchvision's."""

    def forward(self, x):
        return channel_shuffle_elsewhere(self.conv(x), 3)


channel_shuffle_elsewhere = _lookalike
channel_shuffle_elsewhere.__name__ = "channel_shuffle"


def test_torchvision_s_channel_shuffle_imports_as_the_layer():
    model = Shuffled().eval()
    imported = model_to_spec(model, (4, 5, 5))
    text = dumps(imported.data)
    assert "ChannelShuffle: {groups: 3}" in text
    built = netspec.build(verify(imported, text)).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 4, 7, 9)  # another image size: nothing fixed at import
    assert torch.equal(built(x), model(x))


def test_a_function_of_the_same_name_elsewhere_is_traced_through():
    """Only torchvision's function object is read as the layer, not its name."""
    text = dumps(model_to_spec(LookAlike().eval(), (4, 5, 5)).data)
    assert "ChannelShuffle" not in text and "Mul: {other: 3}" in text


def test_on_other_ranks_torchvision_s_function_is_not_the_layer():
    """torchvision's function unpacks a 4-d size; netspec's layer takes other ranks, which
    the importer never meets (the traced call is on a 4-d tensor)."""
    with pytest.raises(ValueError):
        channel_shuffle(torch.randn(2, 4, 3), 2)
    assert netspec_verdict("ChannelShuffle", {"groups": 2}, (4, 3)).ok
