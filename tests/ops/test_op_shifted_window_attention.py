"""ShiftedWindowAttention and ShiftedWindowAttentionV2 (netspec/ops/window.py): torchvision's
Swin window attention on an H×W×C sample; their rule against torchvision's modules, and
every command on them (ONNX: specs/zoo/swin_t.yaml in tests/emit/test_export.py; swin_t's
generated code against the built model: tests/emit/test_codegen.py, which test_zoo holds to
torchvision's)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from conftest import examples
from function_ops import (
    DTYPES,
    build_and_codegen_agree,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import assert_agree
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import (
    PatchMergingV2,
    ShiftedWindowAttention,
    ShiftedWindowAttentionV2,
    SwinTransformer,
    SwinTransformerBlockV2,
)

import netspec
from netspec.emit.summary import summarize

OPS = {"ShiftedWindowAttention": ShiftedWindowAttention,
       "ShiftedWindowAttentionV2": ShiftedWindowAttentionV2}

# 10×9 tokens in 4×4 windows: padded to 12×12, the second attention shifted by 2, then V2's
SPEC = """\
netspec: 1
name: Windows
input: [10, 9, 6]
layers:
  - Linear: {out_features: 8}
    name: embed
  - ShiftedWindowAttention: {window_size: [4, 4], shift_size: [0, 0], num_heads: 2}
    name: attn
  - ShiftedWindowAttention: {window_size: [4, 4], shift_size: [2, 2], num_heads: 2}
    name: shifted
  - ShiftedWindowAttentionV2: {window_size: [4, 4], shift_size: [2, 2], num_heads: 4}
    name: cosine
"""


@settings(max_examples=examples(120))
@given(data=st.data())
def test_window_attention_agrees_with_torchvision(data):
    """Accept/refuse, shape and parameter count as torchvision's modules: H×W×C samples
    (now and then of rank 2 or 4), windows smaller or larger than H and W (padding, the
    shift dropped), shifts, channels divisible by num_heads or not, dim inferred, written
    or wrong, biases and dropouts; every dtype."""
    op = data.draw(st.sampled_from(sorted(OPS)), label="op")
    heads = data.draw(st.integers(1, 3), label="heads")
    channels = heads * data.draw(st.integers(1, 3), label="per head")
    if data.draw(st.integers(0, 5), label="indivisible") == 0:
        channels += 1
    rank = data.draw(st.sampled_from([3, 3, 3, 3, 2, 4]), label="rank")
    sample = (*data.draw(st.tuples(*[st.integers(1, 9)] * (rank - 1)), label="spatial"),
              channels)
    written: dict[str, Any] = {
        "window_size": data.draw(st.lists(st.integers(1, 5), min_size=2, max_size=2)),
        "shift_size": data.draw(st.lists(st.integers(0, 4), min_size=2, max_size=2)),
        "num_heads": heads,
    }
    dim = channels
    if data.draw(st.booleans(), label="write dim"):
        dim = written["dim"] = channels + data.draw(st.sampled_from([0, 0, 0, 1]), label="off")
    for name, strategy in (("qkv_bias", st.booleans()), ("proj_bias", st.booleans()),
                           ("attention_dropout", st.sampled_from([0.0, 0.5])),
                           ("dropout", st.sampled_from([0.0, 0.5]))):
        if data.draw(st.booleans(), label=f"write {name}"):
            written[name] = data.draw(strategy, label=name)
    dtype = data.draw(st.sampled_from(["float32", "float32", *DTYPES]), label="dtype")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # V2 with a window of 1 divides its table by 0
        assert_agree(op, {**written, "dim": dim}, sample, dtype, netspec_args=written)


def test_a_wrong_num_heads_names_the_channels():
    (error,) = netspec.check(SPEC.replace("num_heads: 4", "num_heads: 3")).errors
    assert error.message.endswith("the 8 channels are not divisible by num_heads 3"), \
        error.message
    assert (error.line, error.col) == (11, 84)  # at the value
    window, shift = netspec.check(SPEC.replace("[4, 4], shift_size: [0, 0]",
                                               "4, shift_size: 0")).errors
    for error, name in ((window, "window_size"), (shift, "shift_size")):
        assert name in error.message and "a list of 2" in error.message, error.message
    (error,) = netspec.check(SPEC.replace("input: [10, 9, 6]", "input: [10, 6]")).errors
    assert "expects a H×W×C sample (batch excluded), got 10×8" in error.message, \
        error.message


def _reference(m, x):
    """The spec's network from torchvision's modules, given the built model's weights."""
    layers = [torch.nn.Linear(6, 8), ShiftedWindowAttention(8, [4, 4], [0, 0], 2),
              ShiftedWindowAttention(8, [4, 4], [2, 2], 2),
              ShiftedWindowAttentionV2(8, [4, 4], [2, 2], 4)]
    for layer, name in zip(layers, ("embed", "attn", "shifted", "cosine"), strict=True):
        layer.load_state_dict(getattr(m, name).state_dict(), strict=True)
        x = layer.eval()(x)
    return x


def test_build_and_generated_code_compute_torchvision_s(tmp_path):
    """Built as torchvision's classes; generated code defines its own (no torchvision, no
    netspec import; the window function written once for both classes), with the same
    state_dict keys in the same order and the same outputs, padded and not."""
    inputs = [torch.randn(2, 10, 9, 6), torch.randn(1, 16, 8, 6), torch.randn(3, 3, 2, 6)]
    source = build_and_codegen_agree(SPEC, _reference, inputs, tmp_path, "Windows")
    built = netspec.build(SPEC)
    assert type(built.shifted) is ShiftedWindowAttention
    assert type(built.cosine) is ShiftedWindowAttentionV2
    assert list(built.cosine.state_dict()) == list(
        ShiftedWindowAttentionV2(8, [4, 4], [2, 2], 4).state_dict())
    assert "import torchvision" not in source and "from torchvision" not in source
    assert source.count("def shifted_window_attention(") == 1
    assert "class ShiftedWindowAttention(nn.Module):" in source
    assert "class ShiftedWindowAttentionV2(nn.Module):" in source
    assert "ShiftedWindowAttention(8, [4, 4], [2, 2], 2)" in source, source


def test_summary_buffers_and_render():
    rows, dot = summary_and_render(SPEC)
    built = netspec.build(SPEC)
    for name in ("attn", "shifted", "cosine"):
        module = getattr(built, name)
        assert rows[name].params == sum(p.numel() for p in module.parameters()), name
        assert rows[name].buffers == sum(b.numel() for b in module.buffers()), name
    assert "W-MSA" in dot or "ShiftedWindowAttention" in dot
    assert "window 4×4, shift 2×2" in dot, dot


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("sample,window,shift", [
    ((14, 14, 12), [7, 7], [3, 3]),   # Swin's windows: no padding
    ((10, 9, 12), [4, 4], [2, 2]),    # padded to 12×12
    ((3, 5, 12), [4, 6], [2, 3]),     # one window covers it: no shift
    ((9, 2, 12), [2, 3], [1, 1]),     # shifted along H only
])
def test_macs_are_flop_counter_s(op, sample, window, shift):
    """summary's MACs are FlopCounterMode's count (halved) of one sample: the projections
    over the padded tokens, the scores within windows; V2's position MLP once."""
    spec = (f"netspec: 1\ninput: {list(sample)}\nlayers:\n  - {op}: "
            f"{{window_size: {window}, shift_size: {shift}, num_heads: 3}}\n")
    model = netspec.build(spec).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *sample))
    assert summarize(spec).macs == counter.get_total_flops() // 2 > 0


def _small_swin(v2: bool) -> SwinTransformer:
    """A two-stage Swin (torchvision's classes, V1 or V2 blocks and merging), small enough
    to import in a second."""
    extra: dict[str, Any] = {"block": SwinTransformerBlockV2,
                             "downsample_layer": PatchMergingV2} if v2 else {}
    model = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                            window_size=[4, 4], stochastic_depth_prob=0.1, num_classes=10,
                            **extra)
    with torch.no_grad():  # V2's zeroed key bias and unit norms say little: draw them
        for name, p in model.named_parameters():
            if "norm" in name or "bias" in name:
                p.normal_(0.0, 0.5)
    return model


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_import_of_torchvision_s_swin_round_trips(v2):
    """torchvision's SwinTransformer (V1 and V2 blocks) at 36×36: 9×9 patches padded to
    12×12 windows, patch merging of an odd size; the attention imports as the op, with
    the shift written where the block has one."""
    layers = import_round_trip(_small_swin(v2), (3, 36, 36), torch.randn(2, 3, 36, 36))
    op = "ShiftedWindowAttentionV2" if v2 else "ShiftedWindowAttention"
    text = repr(layers)
    assert f"'{op}': {{'window_size': [4, 4], 'shift_size': [2, 2], 'num_heads': 2}}" in text
    assert ("'PatchMergingV2'" if v2 else "'PatchMerging'") in text, text


def test_import_refuses_another_norm_layer_in_patch_merging():
    from torchvision.models.swin_transformer import PatchMerging

    from netspec.importer.fx import ImportProblem, model_to_spec

    model = torch.nn.Sequential(PatchMerging(8, norm_layer=torch.nn.Identity))
    with pytest.raises(ImportProblem, match="norm_layer is Identity"):
        model_to_spec(model, (6, 6, 8))


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
def test_torchscript_and_torch_export_verified(fmt, tmp_path):
    """Scripted and torch.export-ed as built (torchvision's classes), outputs compared at two
    batch sizes (ONNX: specs/zoo/swin_t.yaml in tests/emit/test_export.py)."""
    from netspec.emit.export import export

    report = export(SPEC, fmt, tmp_path / ("windows.ts" if fmt == "torchscript" else "windows.pt2"))
    assert report.ok and max(report.differences.values()) <= 1e-5, report.differences
