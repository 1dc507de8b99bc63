"""SwinBlockAttention (netspec/ops/window.py): timm's Swin block attention step
(SwinTransformerBlock._attn with its WindowAttention) on an H×W×C sample; its rule and
values against timm's block, every command on it, and the import of timm's Swin
(swin_tiny_patch4_window7_224 itself: tests/importer/test_import_coverage_timm.py)."""

from __future__ import annotations

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

import netspec
from netspec.emit.summary import summarize
from netspec.importer.fx import ImportProblem, model_to_spec

timm_swin = pytest.importorskip("timm.models.swin_transformer")

# 10×9 tokens in 4×4 windows: padded to 12×12, the second attention shifted by 2
SPEC = """\
netspec: 1
name: Windows
input: [10, 9, 6]
layers:
  - Linear: {out_features: 8}
    name: embed
  - SwinBlockAttention: {window_size: [4, 4], shift_size: [0, 0], num_heads: 2}
    name: attn
  - SwinBlockAttention: {window_size: [4, 4], shift_size: [2, 2], num_heads: 2}
    name: shifted
"""


def _block(dim: int, size: tuple[int, int], heads: int, window: Any, shift: Any,
           **options: Any) -> torch.nn.Module:
    with torch.no_grad():
        block = timm_swin.SwinTransformerBlock(dim, size, num_heads=heads, window_size=window,
                                               shift_size=shift, **options).eval()
        block.attn.relative_position_bias_table.normal_()  # timm's 0.02 says little
    return block


def _written(block: torch.nn.Module) -> dict[str, Any]:
    """The op's arguments for a timm block: window and shift as the block fixed them."""
    return {"window_size": list(block.window_size), "shift_size": list(block.shift_size),
            "num_heads": block.attn.num_heads, "qkv_bias": block.attn.qkv.bias is not None}


@settings(max_examples=examples(60))
@given(data=st.data())
def test_values_are_timm_s(data):
    """Built from the arguments a timm block has (its window clipped to the input, its shift
    dropped where the window covers it, unless always_partition), with the block's
    WindowAttention weights loaded strictly: the block's _attn, value for value; windows
    smaller or larger than H and W (padded), shifts, biases, dynamic masks, two batches."""
    heads = data.draw(st.integers(1, 3), label="heads")
    dim = heads * data.draw(st.integers(1, 3), label="per head")
    size = data.draw(st.tuples(st.integers(1, 9), st.integers(1, 9)), label="H, W")
    window = data.draw(st.tuples(st.integers(1, 5), st.integers(1, 5)), label="window")
    shift = data.draw(st.tuples(st.integers(0, 4), st.integers(0, 4)), label="shift")
    options = {"always_partition": data.draw(st.booleans(), label="always_partition"),
               "dynamic_mask": data.draw(st.booleans(), label="dynamic_mask"),
               "qkv_bias": data.draw(st.booleans(), label="qkv_bias")}
    block = _block(dim, size, heads, window, shift, **options)
    written = _written(block)
    sample = (*size, dim)
    result = netspec.check(f"netspec: 1\ninput: {list(sample)}\nlayers:\n"
                           f"  - SwinBlockAttention: {written}\n")
    assert result.ok, [d.format() for d in result.errors]
    assert result.output_shape == sample
    assert result.layers[0].params == sum(p.numel() for p in block.attn.parameters())
    model = netspec.build(result).eval()
    model[0].load_state_dict(block.attn.state_dict(), strict=True)
    for batch in (1, 3):
        x = torch.randn(batch, *sample)
        with torch.no_grad():
            expected = block._attn(x)
            assert torch.allclose(model(x), expected, atol=1e-6), (written, options)


@settings(max_examples=examples(80))
@given(data=st.data())
def test_rule_agrees_with_the_built_module(data):
    """Accept/refuse, shape and parameter count as the module it builds: H×W×C samples (now
    and then of rank 2 or 4), channels divisible by num_heads or not, dim inferred, written
    or wrong, biases and dropouts; every dtype."""
    heads = data.draw(st.integers(1, 3), label="heads")
    channels = heads * data.draw(st.integers(1, 3), label="per head")
    if data.draw(st.integers(0, 5), label="indivisible") == 0:
        channels += 1
    rank = data.draw(st.sampled_from([3, 3, 3, 2, 4]), label="rank")
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
    assert_agree("SwinBlockAttention", {**written, "dim": dim}, sample, dtype,
                 netspec_args=written)


def test_a_wrong_num_heads_names_the_channels():
    (error,) = netspec.check(SPEC.replace("[2, 2], num_heads: 2", "[2, 2], num_heads: 3")).errors
    assert error.message.endswith("the 8 channels are not divisible by num_heads 3"), \
        error.message
    assert (error.line, error.col) == (9, 78), error.format()  # at the value
    (error,) = netspec.check(SPEC.replace("input: [10, 9, 6]", "input: [10, 6]")).errors
    assert "expects a H×W×C sample (batch excluded), got 10×8" in error.message, \
        error.message


def _reference(m, x):
    """The spec's network from timm's blocks' _attn, given the built model's weights."""
    x = m.embed(x)
    for name, shift in (("attn", 0), ("shifted", 2)):
        block = _block(8, (x.shape[1], x.shape[2]), 2, 4, shift, always_partition=True,
                       dynamic_mask=True)
        block.attn.load_state_dict(getattr(m, name).state_dict(), strict=True)
        x = block._attn(x)
    return x


def test_build_and_generated_code_compute_timm_s(tmp_path):
    """Built as netspec's own class; generated code defines the same source (no timm, no
    netspec import; the window functions written once), with the same state_dict keys as
    timm's WindowAttention (no relative_position_index: timm keeps it out) and the same
    outputs, padded and not."""
    inputs = [torch.randn(2, 10, 9, 6), torch.randn(1, 16, 8, 6), torch.randn(3, 3, 2, 6)]
    source = build_and_codegen_agree(SPEC, _reference, inputs, tmp_path, "Windows")
    built = netspec.build(SPEC)
    assert list(built.shifted.state_dict()) == list(
        timm_swin.WindowAttention(8, 2, window_size=4).state_dict())
    assert "import timm" not in source and "from timm" not in source
    assert source.count("def shifted_window_mask(") == 1
    assert source.count("def swin_block_attention(") == 1
    assert "class SwinBlockAttention(nn.Module):" in source
    assert "SwinBlockAttention(8, [4, 4], [2, 2], 2)" in source, source


def test_summary_buffers_and_render():
    dot = dot_with_counts_of_built(SPEC, ("attn", "shifted"))
    assert "window 4×4, shift 2×2" in dot, dot


@pytest.mark.parametrize("sample,window,shift", [
    ((14, 14, 12), [7, 7], [3, 3]),   # Swin's windows: no padding
    ((10, 9, 12), [4, 4], [2, 2]),    # padded to 12×12
    ((3, 5, 12), [4, 6], [2, 3]),     # one window covers it, still shifted
])
def test_macs_are_flop_counter_s(sample, window, shift):
    """summary's MACs are FlopCounterMode's count (halved) of one sample: the projections
    over the padded tokens, the scores within windows."""
    spec = (f"netspec: 1\ninput: {list(sample)}\nlayers:\n  - SwinBlockAttention: "
            f"{{window_size: {window}, shift_size: {shift}, num_heads: 3}}\n")
    model = netspec.build(spec).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *sample))
    assert summarize(spec).macs == counter.get_total_flops() // 2 > 0


def _small_swin(**options: Any) -> torch.nn.Module:
    """A two-stage timm Swin small enough to import in seconds: 9×9 patches in 4×4 windows
    (padded to 12×12, shifted), merged to 5×5, whose window is clipped to it."""
    model = timm_swin.SwinTransformer(img_size=36, patch_size=4, embed_dim=16, depths=(2, 2),
                                      num_heads=(2, 4), window_size=4, num_classes=10,
                                      drop_path_rate=0.1, **options)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "bias" in name:
                p.normal_(0.0, 0.5)
    return model


def test_import_of_timm_s_swin_round_trips():
    """timm's SwinTransformer: each block's _attn imports as the op, named attn (its
    WindowAttention's keys), window and shift as the block fixed them; the residual's
    reshape back to B×H×W×C is a ReshapeAs of the block's input."""
    layers = import_round_trip(_small_swin(), (3, 36, 36), torch.randn(2, 3, 36, 36))
    text = repr(layers)
    assert "'SwinBlockAttention': {'window_size': [4, 4], 'shift_size': [2, 2], " \
           "'num_heads': 2}" in text, text
    assert "'ReshapeAs': None" in text, text


def test_import_refuses_what_the_op_cannot_say():
    """A WindowAttention whose head_dim is not dim / num_heads is named, not imported."""
    block = timm_swin.SwinTransformerBlock(8, (4, 4), num_heads=2, head_dim=3, window_size=4)
    with pytest.raises(ImportProblem, match="head_dim makes qkv 18 wide, not 3 × its 8"):
        model_to_spec(torch.nn.Sequential(block), (4, 4, 8))


def test_import_reads_only_timm_s_own_child_and_leaves_the_block_as_it_was():
    """The block's _attn is the op while the importer traces it (then the block's method
    again); a block whose attn is another module is read as its forward is, refused by
    name."""
    block = _block(8, (8, 8), 2, 4, 2)
    model_to_spec(torch.nn.Sequential(block), (8, 8, 8))
    assert "_attn" not in block.__dict__
    block.attn = torch.nn.Identity()
    with pytest.raises(ImportProblem, match=r"module '0' \(SwinTransformerBlock\): operation"):
        model_to_spec(torch.nn.Sequential(block), (8, 8, 8))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "exported-program"])
def test_exports_verified(fmt, tmp_path):
    """ONNX (onnxruntime), TorchScript and torch.export, outputs compared at two batch
    sizes."""
    from netspec.emit.export import export

    suffix = {"onnx": ".onnx", "torchscript": ".ts", "exported-program": ".pt2"}[fmt]
    report = export(SPEC, fmt, tmp_path / f"windows{suffix}")
    assert report.ok and max(report.differences.values()) <= 1e-5, report.differences
