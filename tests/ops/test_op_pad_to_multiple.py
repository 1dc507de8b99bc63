"""PadToMultiple (netspec/ops/padding.py): zeros after the sample's last dims up to
multiples, computed from the sizes the input has when the model runs, as Swin pads to its
window or patch; its rule against F.pad by those sizes, every command on it, and the import
of F.pad calls whose pad is computed in forward (timm's Swin block, torchvision's
PatchEmbed3d)."""

from __future__ import annotations

import inspect

import pytest
import torch
from conftest import examples
from function_ops import (
    DTYPES,
    build_and_codegen_agree,
    compare,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torchvision.models.video.swin_transformer import PatchEmbed3d

import netspec
from netspec.importer.fx import ImportProblem, model_to_spec
from netspec.ops import REGISTRY, torch_side


def padded_by_hand(x: torch.Tensor, multiple: tuple[int, ...]) -> torch.Tensor:
    """F.pad with each pad written out from x's sizes, the reference's way."""
    pad = []
    for i, k in enumerate(reversed(multiple), start=1):
        pad += [0, (k - x.shape[-i] % k) % k]
    return F.pad(x, pad)


@st.composite
def case(draw):
    """A sample of 1 to 4 dims and multiples for its last 1 to all of them (now and then one
    more entry than it has dims)."""
    sample = tuple(draw(st.integers(1, 9)) for _ in range(draw(st.integers(1, 4))))
    count = draw(st.integers(1, len(sample) + (draw(st.integers(0, 5)) == 0)))
    return sample, [draw(st.integers(1, 5)) for _ in range(count)]


@settings(max_examples=examples(120))
@given(drawn=case(), dtype=st.sampled_from(DTYPES))
def test_pad_to_multiple_agrees_with_torch(drawn, dtype):
    sample, multiple = drawn
    (ours, our_dtype, why), (theirs, their_dtype, their_why) = compare(
        "PadToMultiple", {"multiple": multiple}, sample,
        lambda x: padded_by_hand(x, tuple(multiple)), dtype)
    if len(multiple) > len(sample):  # torch would pad the batch too: netspec refuses
        assert ours is None and "the batch is not padded" in why, (drawn, why)
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why, their_why)


def test_generated_files_define_what_build_runs():
    assert inspect.getsource(torch_side.pad_to_multiple).rstrip() == \
        REGISTRY["PadToMultiple"].code.helper


SPEC = """\
netspec: 1
name: Padded
input: [9, 10, 4]
layers:
  - PadToMultiple: [7, 7, 1]
    name: pad
  - Linear: {in_features: 4, out_features: 4}
    name: mix
"""


def test_build_codegen_summary_render(tmp_path):
    def reference(m, x):
        return m.mix(padded_by_hand(x, (7, 7, 1)))

    inputs = [torch.randn(2, 9, 10, 4), torch.randn(1, 14, 3, 4), torch.randn(3, 7, 7, 4)]
    source = build_and_codegen_agree(SPEC, reference, inputs, tmp_path, "Padded")
    assert "pad_to_multiple(x, [7, 7, 1])  # -> 14×14×4" in source, source
    rows, dot = summary_and_render(SPEC)
    assert rows["pad"].params == 0 and rows["mix"].params == 20
    assert "to multiples of 7×7×1" in dot


class SwinPad(nn.Module):
    """timm's SwinTransformerBlock: the sizes read before a roll, the rolled map padded to
    multiples of the window, the padding cropped off after."""

    def __init__(self, window=4):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.window = window

    def forward(self, x):
        _, H, W, _ = x.shape
        shifted = torch.roll(x, shifts=(-1, -1), dims=(1, 2))
        pad_h = (self.window - H % self.window) % self.window
        pad_w = (self.window - W % self.window) % self.window
        shifted = F.pad(shifted, (0, 0, 0, pad_w, 0, pad_h))
        return self.fc(shifted)


@pytest.mark.parametrize("shape", [(8, 8, 6), (9, 6, 6)])
def test_a_pad_computed_in_forward_imports_as_pad_to_multiple(shape):
    model = SwinPad()
    layers = import_round_trip(model, shape, torch.randn(2, *shape))
    assert {"PadToMultiple": {"multiple": [4, 4, 1]}} in [
        {k: v for k, v in e.items() if k != "name"} for e in layers], layers
    built = netspec.build(netspec.check(_spec(model, shape))).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    for other in [(1, 5, 11, 6), (2, 12, 3, 6)]:  # the built model pads as the block does
        x = torch.randn(other)
        with torch.no_grad():
            assert torch.equal(built(x), model(x)), other


def _spec(model, shape):
    from netspec.importer.fx import dumps

    return dumps(model_to_spec(model.eval(), shape).data)


def test_torchvision_patch_embed_3d_round_trips_at_other_sizes():
    """torchvision's PatchEmbed3d pads by _compute_pad_size_3d((t, h, w), patch_size), a
    function of sizes fx records as one call."""
    model = PatchEmbed3d(patch_size=[2, 4, 4], in_channels=3, embed_dim=8,
                         norm_layer=nn.LayerNorm).eval()
    text = _spec(model, (3, 4, 16, 16))
    assert "PadToMultiple: {multiple: [2, 4, 4]}" in text, text
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    for shape in [(1, 3, 4, 16, 16), (2, 3, 5, 18, 13)]:
        x = torch.randn(shape)
        with torch.no_grad():
            assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0), shape


class OtherPad(nn.Module):
    """A pad computed in forward that is not up to a multiple: half the width on each side."""

    def forward(self, x):
        return F.pad(x, (x.shape[-1] // 2, x.shape[-1] // 2))


class ReflectPad(nn.Module):
    def forward(self, x):
        return F.pad(x, (0, (4 - x.shape[-1] % 4) % 4), mode="reflect")


@pytest.mark.parametrize("model, message", [
    (OtherPad(), "other than zeros after it up to a multiple of a constant"),
    (ReflectPad(), "netspec pads so with zeros only"),
])
def test_other_computed_pads_are_refused_by_name(model, message):
    with pytest.raises(ImportProblem, match=message):
        model_to_spec(nn.Sequential(nn.Conv1d(2, 2, 1), model), (2, 6))


def test_torchscript_scripts_it(tmp_path):
    """Scripted (not traced at one size: the pad follows the input), verified at two
    batches."""
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "padded.ts")
    assert report.ok and report.method == "torch.jit.script", report
    scripted = torch.jit.load(str(tmp_path / "padded.ts"))
    assert scripted(torch.randn(1, 5, 11, 4)).shape == (1, 7, 14, 4)
