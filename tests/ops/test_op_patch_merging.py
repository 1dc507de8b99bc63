"""PatchMerging and PatchMergingV2 (netspec/ops/window.py): Swin's downsampling of a
...×H×W×C sample, 2×2 patches concatenated (odd sizes padded), LayerNorm and Linear to 2C
(V2: Linear, then LayerNorm); their rule against torchvision's modules, and every command on
them (the import of whole Swins: tests/ops/test_op_shifted_window_attention.py)."""

from __future__ import annotations

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
from torchvision.models.swin_transformer import PatchMerging, PatchMergingV2

import netspec
from netspec.emit.summary import summarize

OPS = {"PatchMerging": PatchMerging, "PatchMergingV2": PatchMergingV2}

SPEC = """\
netspec: 1
name: Merging
input: [7, 6, 4]
layers:
  - Linear: {out_features: 8}
    name: embed
  - PatchMerging:
    name: merge
  - PatchMergingV2: {dim: 16}
    name: merge_v2
"""


@settings(max_examples=examples(120))
@given(data=st.data())
def test_patch_merging_agrees_with_torchvision(data):
    """Accept/refuse, shape and parameter count as torchvision's modules: samples of rank 1
    to 5 (the last three dims are H×W×C, odd sizes padded), dim inferred, written or
    wrong; every dtype."""
    op = data.draw(st.sampled_from(sorted(OPS)), label="op")
    rank = data.draw(st.sampled_from([3, 3, 3, 1, 2, 4, 5]), label="rank")
    sample = data.draw(st.tuples(*[st.integers(1, 5)] * rank), label="sample")
    written: dict[str, Any] = {}
    dim = sample[-1]
    if data.draw(st.booleans(), label="write dim"):
        dim = written["dim"] = sample[-1] + data.draw(st.sampled_from([0, 0, 1]), label="off")
    dtype = data.draw(st.sampled_from(["float32", "float32", *DTYPES]), label="dtype")
    assert_agree(op, {"dim": dim}, sample, dtype, netspec_args=written or None)


def test_a_wrong_dim_names_the_channels():
    (error,) = netspec.check(SPEC.replace("{dim: 16}", "{dim: 12}")).errors
    assert error.message.endswith("dim 12 does not match the 16 channels coming in (output "
                                  "of layer 1 'merge' (PatchMerging), 4×3×16)"), error.message
    assert (error.line, error.col) == (9, 27)
    (error,) = netspec.check(SPEC.replace("input: [7, 6, 4]", "input: [6, 4]")).errors
    assert "at least 3 dimensions" in error.message and "got 6×8" in error.message, \
        error.message


def test_build_and_generated_code_compute_torchvision_s(tmp_path):
    """Built as torchvision's classes; generated code defines its own (the padding function
    written once for both), same keys, same outputs, odd sizes and even."""
    def reference(m, x):
        merge, merge_v2 = PatchMerging(8), PatchMergingV2(16)
        merge.load_state_dict(m.merge.state_dict(), strict=True)
        merge_v2.load_state_dict(m.merge_v2.state_dict(), strict=True)
        return merge_v2(merge(m.embed(x)))

    inputs = [torch.randn(2, 7, 6, 4), torch.randn(1, 8, 8, 4), torch.randn(3, 1, 3, 4)]
    source = build_and_codegen_agree(SPEC, reference, inputs, tmp_path, "Merging")
    assert type(netspec.build(SPEC).merge) is PatchMerging
    assert "from torchvision" not in source and "import torchvision" not in source
    assert source.count("def patch_merging_pad(") == 1
    assert "class PatchMergingV2(nn.Module):" in source and "PatchMergingV2(16)" in source


def test_summary_macs_and_render():
    rows, dot = summary_and_render(SPEC)
    built = netspec.build(SPEC).eval()
    for name in ("merge", "merge_v2"):
        assert rows[name].params == sum(p.numel() for p in getattr(built, name).parameters())
    assert rows["merge"].output_shape == (4, 3, 16) and rows["merge_v2"].output_shape == (2, 2, 32)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        built(torch.zeros(1, 7, 6, 4))
    assert summarize(SPEC).macs == counter.get_total_flops() // 2
    assert "PatchMerging" in dot


@pytest.mark.parametrize("op", sorted(OPS))
def test_import_round_trips(op):
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), OPS[op](6))
    with torch.no_grad():  # not the identity norm, so that the comparison means something
        for p in model[1].norm.parameters():
            p.normal_()
    layers = import_round_trip(model, (5, 3, 4), torch.randn(2, 5, 3, 4))
    assert layers[1] in (op, {op: None}, {op: {}}), layers


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
def test_torchscript_and_torch_export_verified(fmt, tmp_path):
    """Scripted and torch.export-ed as built (torchvision's classes), outputs compared at two
    batch sizes (ONNX: specs/zoo/swin_t.yaml in tests/emit/test_export.py)."""
    from netspec.emit.export import export

    report = export(SPEC, fmt, tmp_path / ("merging.ts" if fmt == "torchscript" else "merging.pt2"))
    assert report.ok and max(report.differences.values()) <= 1e-5, report.differences
