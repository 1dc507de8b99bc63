"""WindowPartition and WindowDepartition (netspec/ops/window.py): torchvision's MaxViT
window ops, their rules against torchvision's modules, and every command on them."""

from __future__ import annotations

import inspect

import pytest
import torch
from conftest import examples
from function_ops import DTYPES, build_and_codegen_agree, compare, summary_and_render
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.maxvit import WindowDepartition, WindowPartition

import netspec
from netspec.ops import REGISTRY, torch_side

# block attention's round trip: windows of 7×7 tokens, a per-token layer, the map back
SPEC = """\
netspec: 1
name: Windows
input: [8, 14, 21]
layers:
  - WindowPartition: 7
    name: windows
  - Linear: {in_features: 8, out_features: 8}
    name: mix
  - WindowDepartition: {p: 7, h_partitions: 2, w_partitions: 3}
    name: map
"""


@st.composite
def partition_case(draw):
    """A sample of 2 to 4 dims (3 mostly), its H and W multiples of p mostly."""
    p = draw(st.integers(1, 4))
    rank = draw(st.sampled_from([3, 3, 3, 2, 4]))
    sample = [draw(st.integers(1, 3))] + [p * draw(st.integers(1, 3)) for _ in range(rank - 1)]
    if draw(st.integers(0, 3)) == 0:
        i = draw(st.integers(0, rank - 1))
        sample[i] += draw(st.integers(1, 2))
    return tuple(sample), p


@settings(max_examples=examples(120))
@given(drawn=partition_case(), dtype=st.sampled_from(DTYPES))
def test_window_partition_agrees_with_torchvision(drawn, dtype):
    sample, p = drawn
    (ours, our_dtype, why), (theirs, their_dtype, their_why) = compare(
        "WindowPartition", {"p": p}, sample, lambda x: WindowPartition()(x, p), dtype)
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why, their_why)


@st.composite
def departition_case(draw):
    """Windows×tokens×C: mostly what a partition of an h×w map of p×p windows gives, now and
    then another count (torch needs only the element counts to agree), or another rank."""
    p, h, w, c = (draw(st.integers(1, 3)) for _ in range(4))
    sample = [h * w, p * p, c]
    how = draw(st.sampled_from(["as cut", "as cut", "swapped", "off", "rank"]))
    if how == "swapped":  # the same count of tokens, other windows
        sample[:2] = [p * p, h * w]
    elif how == "off":
        sample[draw(st.integers(0, 2))] += 1
    elif how == "rank":
        sample = sample[:2] if draw(st.booleans()) else [*sample, 2]
    return tuple(sample), {"p": p, "h_partitions": h, "w_partitions": w}


@settings(max_examples=examples(120))
@given(drawn=departition_case(), dtype=st.sampled_from(DTYPES))
def test_window_departition_agrees_with_torchvision(drawn, dtype):
    sample, args = drawn
    (ours, our_dtype, why), (theirs, their_dtype, their_why) = compare(
        "WindowDepartition", args, sample,
        lambda x: WindowDepartition()(x, args["p"], args["h_partitions"], args["w_partitions"]),
        dtype)
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why, their_why)


@pytest.mark.parametrize(("edit", "message", "where"), [
    (lambda s: s.replace("input: [8, 14, 21]", "input: [8, 15, 21]"),
     "the map's height 15 (input 8×15×21) is not a multiple of p 7", (5, 22)),
    (lambda s: s.replace("h_partitions: 2", "h_partitions: 3"),
     "6 windows of 49 tokens (input 6×49×8) are 294 tokens, and 3×3 windows of 7×7 are 441",
     (9, 45)),
    (lambda s: s.replace("input: [8, 14, 21]", "input: [14, 21]"),
     "C×H×W", None),
])
def test_refusals_name_the_numbers(edit, message, where):
    errors = netspec.check(edit(SPEC)).errors
    assert errors and message in errors[0].message, [d.message for d in errors]
    if where:
        assert (errors[0].line, errors[0].col) == where, errors[0].format()


def test_generated_files_define_what_build_runs():
    """The helpers generated code defines are netspec.ops.torch_side's source."""
    for op, function in (("WindowPartition", torch_side.window_partition),
                         ("WindowDepartition", torch_side.window_departition)):
        assert inspect.getsource(function).rstrip() == REGISTRY[op].code.helper


def test_build_codegen_summary_render(tmp_path):
    """The same output as torchvision's modules, built and generated."""
    def reference(m, x):
        return WindowDepartition()(m.mix(WindowPartition()(x, 7)), 7, 2, 3)

    source = build_and_codegen_agree(SPEC, reference, [torch.randn(2, 8, 14, 21)], tmp_path,
                                     "Windows")
    assert "window_partition(x, 7)  # -> 6×49×8" in source, source
    assert "def window_departition(" in source and "import torchvision" not in source
    rows, dot = summary_and_render(SPEC)
    assert rows["windows"].params == 0 and rows["map"].macs == 0
    assert "p 7, 2×3 windows" in dot


def test_torchscript_export(tmp_path):
    """Scripted and verified at two batches (ONNX: MaxViT's reduced export)."""
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "windows.ts")
    assert report.ok and len(report.differences) == 2, report
