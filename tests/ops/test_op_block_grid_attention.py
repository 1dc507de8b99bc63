"""BlockGridAttention (netspec/ops/window.py): timm's MaxViT attention step
(PartitionAttentionCl._partition_attn with its AttentionCl) on an H×W×C sample, block or
grid; its rule and values against timm's block, every command on it, and the import of
timm's MaxViT blocks (maxvit_tiny_rw_224 itself: tests/importer/test_import_coverage_timm.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import examples
from function_ops import DTYPES, build_and_codegen_agree, summary_and_render
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import assert_agree
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.emit.summary import summarize
from netspec.importer.fx import ImportProblem, dumps, model_to_spec

maxxvit = pytest.importorskip("timm.models.maxxvit")

# 8×12 tokens: 4×4 windows of neighbours, then a 2×3 grid of tokens 4 apart
SPEC = """\
netspec: 1
name: Partitions
input: [8, 12, 6]
layers:
  - Linear: {out_features: 16}
    name: embed
  - BlockGridAttention: {partition: block, partition_size: [4, 4], dim_head: 8}
    name: block
  - BlockGridAttention: {partition: grid, partition_size: [2, 3], dim_head: 4, head_first: false}
    name: grid
"""


def _block(dim: int, partition: str, size: tuple[int, int], **cfg: Any) -> torch.nn.Module:
    config = maxxvit.MaxxVitTransformerCfg(window_size=size, grid_size=size, **cfg)
    with torch.no_grad():
        block = maxxvit.PartitionAttentionCl(dim, partition, cfg=config).eval()
        for p in block.attn.rel_pos.parameters():  # RelPosBias's table: 0.02 says little
            p.normal_()
    return block


@settings(max_examples=examples(60))
@given(data=st.data())
def test_values_are_timm_s(data):
    """Built from the arguments a timm block has, with its AttentionCl's weights loaded
    strictly: the block's _partition_attn, within rounding (timm's fused attention); block
    and grid, partitions of every shape, heads first or not, biases, two batches."""
    dim_head = data.draw(st.integers(1, 4), label="dim_head")
    dim = dim_head * data.draw(st.integers(1, 3), label="heads")
    partition = data.draw(st.sampled_from(["block", "grid"]), label="partition")
    size = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4)), label="partition_size")
    counts = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)), label="partitions")
    cfg = {"dim_head": dim_head, "head_first": data.draw(st.booleans(), label="head_first"),
           "attn_bias": data.draw(st.booleans(), label="bias")}
    block = _block(dim, partition, size, **cfg)
    sample = (size[0] * counts[0], size[1] * counts[1], dim)
    written = {"partition": partition, "partition_size": list(size), "dim_head": dim_head,
               "bias": cfg["attn_bias"], "head_first": cfg["head_first"]}
    result = netspec.check(f"netspec: 1\ninput: {list(sample)}\nlayers:\n"
                           f"  - BlockGridAttention: {written}\n")
    assert result.ok, [d.format() for d in result.errors]
    assert result.output_shape == sample
    assert result.layers[0].params == sum(p.numel() for p in block.attn.parameters())
    model = netspec.build(result).eval()
    model[0].load_state_dict(block.attn.state_dict(), strict=True)
    for batch in (1, 3):
        x = torch.randn(batch, *sample)
        with torch.no_grad():
            expected = block._partition_attn(x)
            assert torch.allclose(model(x), expected, atol=1e-5), written


@settings(max_examples=examples(80))
@given(data=st.data())
def test_rule_agrees_with_the_built_module(data):
    """Accept/refuse, shape and parameter count as the module it builds: H×W×C samples (now
    and then of rank 2 or 4), sizes multiples of the partition or not, channels divisible
    by dim_head or not, dim inferred, written or wrong; every dtype."""
    dim_head = data.draw(st.integers(1, 3), label="dim_head")
    channels = dim_head * data.draw(st.integers(1, 3), label="heads")
    if data.draw(st.integers(0, 5), label="indivisible") == 0:
        channels += 1
    rank = data.draw(st.sampled_from([3, 3, 3, 2, 4]), label="rank")
    sample = (*data.draw(st.tuples(*[st.integers(1, 8)] * (rank - 1)), label="spatial"),
              channels)
    written: dict[str, Any] = {
        "partition": data.draw(st.sampled_from(["block", "grid"]), label="partition"),
        "partition_size": data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=2)),
        "dim_head": dim_head,
    }
    dim = channels
    if data.draw(st.booleans(), label="write dim"):
        dim = written["dim"] = channels + data.draw(st.sampled_from([0, 0, 0, 1]), label="off")
    for name, strategy in (("bias", st.booleans()), ("head_first", st.booleans()),
                           ("attention_dropout", st.sampled_from([0.0, 0.5])),
                           ("dropout", st.sampled_from([0.0, 0.5]))):
        if data.draw(st.booleans(), label=f"write {name}"):
            written[name] = data.draw(strategy, label=name)
    dtype = data.draw(st.sampled_from(["float32", "float32", *DTYPES]), label="dtype")
    assert_agree("BlockGridAttention", {**written, "dim": dim}, sample, dtype,
                 netspec_args=written)


def test_errors_name_the_argument():
    (error,) = netspec.check(SPEC.replace("[2, 3], dim_head: 4", "[2, 5], dim_head: 4")).errors
    assert error.message.endswith("the map's width 12 (input 8×12×16) is not a multiple of "
                                  "partition_size 5: it cannot be cut into grids of 2×5"), \
        error.message
    assert error.line == 9, error.format()
    (error,) = netspec.check(SPEC.replace("dim_head: 8", "dim_head: 5")).errors
    assert error.message.endswith("the 16 channels are not divisible by dim_head 5"), \
        error.message
    (error,) = netspec.check(SPEC.replace("partition: block", "partition: blocks")).errors
    assert 'partition must be one of "block", "grid", got "blocks"' in error.message, \
        error.message


def _reference(m, x):
    """The spec's network from timm's blocks' _partition_attn, given the built weights."""
    x = m.embed(x)
    for name, partition, size, cfg in (("block", "block", (4, 4), {"dim_head": 8}),
                                       ("grid", "grid", (2, 3),
                                        {"dim_head": 4, "head_first": False})):
        block = _block(16, partition, size, **cfg)
        block.attn.load_state_dict(getattr(m, name).state_dict(), strict=True)
        x = block._partition_attn(x)
    return x


def test_build_and_generated_code_compute_timm_s(tmp_path):
    """Built as netspec's own class; generated code defines the same source (no timm, no
    netspec import), with the state_dict keys of timm's AttentionCl (rel_pos's index kept
    out, as timm keeps it) and timm's outputs within rounding."""
    inputs = [torch.randn(2, 8, 12, 6), torch.randn(1, 16, 12, 6)]

    def reference(m, x):
        expected = _reference(m, x)
        assert torch.allclose(m(x), expected, atol=1e-5)
        return m(x)

    source = build_and_codegen_agree(SPEC, reference, inputs, tmp_path, "Partitions")
    built = netspec.build(SPEC)
    assert list(built.grid.state_dict()) == list(
        _block(16, "grid", (2, 3), dim_head=4).attn.state_dict())
    assert "import timm" not in source and "from timm" not in source
    assert source.count("def partition_attention(") == 1
    assert source.count("class WindowPositionBias(nn.Module):") == 1
    assert 'BlockGridAttention(16, "grid", [2, 3], dim_head=4, head_first=False)' in source, \
        source


def test_summary_buffers_and_render():
    rows, dot = summary_and_render(SPEC)
    built = netspec.build(SPEC)
    for name in ("block", "grid"):
        module = getattr(built, name)
        assert rows[name].params == sum(p.numel() for p in module.parameters()), name
        assert rows[name].buffers == sum(b.numel() for b in module.buffers()), name
    assert "grid 2×3, heads of 4" in dot, dot


@pytest.mark.parametrize("sample,partition,size", [
    ((14, 14, 12), "block", [7, 7]),
    ((8, 12, 12), "grid", [2, 3]),
])
def test_macs_are_flop_counter_s(sample, partition, size):
    spec = (f"netspec: 1\ninput: {list(sample)}\nlayers:\n  - BlockGridAttention: "
            f"{{partition: {partition}, partition_size: {size}, dim_head: 4}}\n")
    model = netspec.build(spec).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *sample))
    assert summarize(spec).macs == counter.get_total_flops() // 2 > 0


class _TwoPartitions(torch.nn.Module):
    """A MaxViT block's attention half: block then grid attention on a B×H×W×C map."""

    def __init__(self):
        super().__init__()
        self.attn_block = _block(8, "block", (2, 2), dim_head=4)
        self.attn_grid = _block(8, "grid", (2, 2), dim_head=4)

    def forward(self, x):
        return self.attn_grid(self.attn_block(x))


def test_import_of_timm_s_partition_attention_round_trips():
    """Each block's _partition_attn imports as the op, named attn (its AttentionCl's
    keys), block and grid as the block has them."""
    model = _TwoPartitions().eval()
    imported = model_to_spec(model, (4, 6, 8))
    built = netspec.build(dumps(imported.data)).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 4, 6, 8)
    with torch.no_grad():  # timm's fused attention: the same within rounding
        assert torch.allclose(built(x), model(x), atol=1e-5)
    text = repr(imported.data["layers"])
    for partition in ("block", "grid"):
        assert f"'BlockGridAttention': {{'partition': '{partition}', 'partition_size': " \
               "[2, 2], 'dim_head': 4}" in text, text


def test_import_refuses_another_position_bias():
    block = _block(8, "block", (2, 2), dim_head=4, rel_pos_type="mlp")
    with pytest.raises(ImportProblem, match="position bias is RelPosMlp, not RelPosBias"):
        model_to_spec(torch.nn.Sequential(block), (4, 4, 8))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "exported-program"])
def test_exports_verified(fmt, tmp_path):
    """ONNX (onnxruntime), TorchScript and torch.export, outputs compared at two batch
    sizes."""
    from netspec.emit.export import export

    suffix = {"onnx": ".onnx", "torchscript": ".ts", "exported-program": ".pt2"}[fmt]
    report = export(SPEC, fmt, tmp_path / f"partitions{suffix}")
    assert report.ok and max(report.differences.values()) <= 1e-5, report.differences
