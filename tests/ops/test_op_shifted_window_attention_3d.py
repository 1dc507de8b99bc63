"""ShiftedWindowAttention3d (netspec/ops/window.py): torchvision's Video Swin window attention
on a T×H×W×C sample; its rule against torchvision's module, every command on it, and the
import of torchvision's SwinTransformer3d."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from conftest import examples
from function_ops import (
    DTYPES,
    build_and_codegen_agree,
    dot_with_counts_of_built,
    import_round_trip,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import assert_agree
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.video.swin_transformer import (
    PatchEmbed3d,
    ShiftedWindowAttention3d,
    SwinTransformer3d,
)

import netspec
from netspec.emit.summary import summarize

# 5×9×7 tokens in 2×4×4 windows: padded to 6×12×8, the second attention shifted
SPEC = """\
netspec: 1
name: Windows3d
input: [5, 9, 7, 6]
layers:
  - Linear: {out_features: 8}
    name: embed
  - ShiftedWindowAttention3d: {window_size: [2, 4, 4], shift_size: [0, 0, 0], num_heads: 2}
    name: attn
  - ShiftedWindowAttention3d: {window_size: [2, 4, 4], shift_size: [1, 2, 2], num_heads: 2}
    name: shifted
"""


@settings(max_examples=examples(80))
@given(data=st.data())
def test_window_attention_3d_agrees_with_torchvision(data):
    """Accept/refuse, shape and parameter count as torchvision's module: T×H×W×C samples
    (now and then of another rank), windows smaller or larger than the input (padding, the
    window cut to the input, the shift dropped), shifts, channels divisible by num_heads or
    not, dim inferred, written or wrong, biases; every dtype."""
    heads = data.draw(st.integers(1, 3), label="heads")
    channels = heads * data.draw(st.integers(1, 3), label="per head")
    if data.draw(st.integers(0, 5), label="indivisible") == 0:
        channels += 1
    rank = data.draw(st.sampled_from([4, 4, 4, 4, 3, 5]), label="rank")
    sample = (*data.draw(st.tuples(*[st.integers(1, 6)] * (rank - 1)), label="spatial"),
              channels)
    written: dict[str, Any] = {
        "window_size": data.draw(st.lists(st.integers(1, 4), min_size=3, max_size=3)),
        "shift_size": data.draw(st.lists(st.integers(0, 3), min_size=3, max_size=3)),
        "num_heads": heads,
    }
    dim = channels
    if data.draw(st.booleans(), label="write dim"):
        dim = written["dim"] = channels + data.draw(st.sampled_from([0, 0, 0, 1]), label="off")
    for name in ("qkv_bias", "proj_bias"):
        if data.draw(st.booleans(), label=f"write {name}"):
            written[name] = data.draw(st.booleans(), label=name)
    dtype = data.draw(st.sampled_from(["float32", "float32", *DTYPES]), label="dtype")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_agree("ShiftedWindowAttention3d", {**written, "dim": dim}, sample, dtype,
                     netspec_args=written)


def _reference(m, x):
    """The spec's network from torchvision's modules, given the built model's weights."""
    layers = [torch.nn.Linear(6, 8), ShiftedWindowAttention3d(8, [2, 4, 4], [0, 0, 0], 2),
              ShiftedWindowAttention3d(8, [2, 4, 4], [1, 2, 2], 2)]
    for layer, name in zip(layers, ("embed", "attn", "shifted"), strict=True):
        layer.load_state_dict(getattr(m, name).state_dict(), strict=True)
        x = layer.eval()(x)
    return x


def test_build_and_generated_code_compute_torchvision_s(tmp_path):
    """Built as torchvision's class; generated code defines its own (no torchvision), with
    the same state_dict keys and bit-equal outputs: padded, shifted, a window longer than
    the input (cut to it, not shifted)."""
    inputs = [torch.randn(2, 5, 9, 7, 6), torch.randn(1, 4, 8, 8, 6),
              torch.randn(1, 1, 3, 2, 6)]
    source = build_and_codegen_agree(SPEC, _reference, inputs, tmp_path, "Windows3d")
    built = netspec.build(SPEC)
    assert type(built.shifted) is ShiftedWindowAttention3d
    assert list(built.shifted.state_dict()) == list(
        ShiftedWindowAttention3d(8, [2, 4, 4], [1, 2, 2], 2).state_dict())
    assert "import torchvision" not in source and "from torchvision" not in source
    assert source.count("def shifted_window_attention_3d(") == 1
    assert "ShiftedWindowAttention3d(8, [2, 4, 4], [1, 2, 2], 2)" in source, source


def test_summary_buffers_and_render():
    dot = dot_with_counts_of_built(SPEC, ("attn", "shifted"))
    assert "window 2×4×4, shift 1×2×2" in dot, dot


@pytest.mark.parametrize("sample,window,shift", [
    ((4, 14, 14, 12), [8, 7, 7], [4, 3, 3]),  # Video Swin's: T cut to 4, not shifted
    ((5, 9, 7, 12), [2, 4, 4], [1, 2, 2]),    # padded to 6×12×8
    ((2, 3, 5, 12), [2, 4, 6], [1, 2, 3]),    # one window covers it
])
def test_macs_are_flop_counter_s(sample, window, shift):
    """summary's MACs are FlopCounterMode's count (halved) of one sample: the projections
    over the padded tokens, the scores within the windows the forward uses."""
    spec = (f"netspec: 1\ninput: {list(sample)}\nlayers:\n  - ShiftedWindowAttention3d: "
            f"{{window_size: {window}, shift_size: {shift}, num_heads: 3}}\n")
    model = netspec.build(spec).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *sample))
    assert summarize(spec).macs == counter.get_total_flops() // 2 > 0


def test_import_of_torchvision_s_swin3d_round_trips():
    """A small two-stage SwinTransformer3d (torchvision's classes) at 3×5×36×36: the patch
    embedding's pad to multiples of its patch (PadToMultiple), the attention as the op,
    patch merging of odd sizes."""
    model = SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=16, depths=[2, 2],
                              num_heads=[2, 4], window_size=[2, 4, 4], num_classes=10,
                              stochastic_depth_prob=0.1,
                              patch_embed=PatchEmbed3d)
    layers = import_round_trip(model, (3, 5, 36, 36), torch.randn(2, 3, 5, 36, 36))
    text = repr(layers)
    assert "'ShiftedWindowAttention3d': {'window_size': [2, 4, 4], 'shift_size': [1, 2, 2], " \
        "'num_heads': 2}" in text, text
    assert "'PadToMultiple': {'multiple': [2, 4, 4]}" in text, text


def test_torchscript_scripts_it(tmp_path):
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "windows3d.ts")
    assert report.ok and report.method == "torch.jit.script", report
