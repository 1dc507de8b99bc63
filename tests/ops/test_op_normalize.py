"""Normalize (netspec/ops/normalize.py): F.normalize(x, p, dim, eps), dim counting the
batch (EdgeNeXt's cross-covariance attention); its rule against torch, and every command."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import examples
from function_ops import (
    DTYPES,
    build_and_codegen_agree,
    compare,
    dims_strategy,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec

SPEC = """\
netspec: 1
name: Normalised
input: [2, 6, 5]
layers:
  - Linear: {out_features: 4}
    name: proj
  - Normalize: {dim: -1}
    name: norm
  - Normalize: {p: 1.0, dim: 2, eps: 0.001}
"""


@settings(max_examples=examples(150), deadline=None)
@given(sample=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data(),
       dtype=st.sampled_from(DTYPES))
def test_normalize_agrees_with_torch(sample, data, dtype):
    """Shapes, dtypes and refusals as torch's F.normalize at two batch sizes: every dim
    (the batch's refused, deliberately), p, eps, every dtype (ints refused, as torch)."""
    sample = tuple(sample)
    dim = data.draw(dims_strategy(len(sample) + 1, st), label="dim")
    p = data.draw(st.sampled_from([2.0, 1.0, 3.0, 0.5]), label="p")
    eps = data.draw(st.sampled_from([1e-12, 1e-3]), label="eps")
    args = {"p": p, "dim": dim, "eps": eps}
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        "Normalize", args, sample, lambda x: F.normalize(x, p, dim, eps), dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: torch normalises over the batch without complaint (dim 0)
        assert "batch dimension" in why and dim in (0, -len(sample) - 1), (args, why)
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (args, sample, why)


def test_build_codegen_summary_render(tmp_path):
    def reference(m, x):
        y = F.normalize(m.proj(x), dim=-1)
        return F.normalize(y, p=1.0, dim=2, eps=0.001)

    source = build_and_codegen_agree(SPEC, reference, [torch.randn(3, 2, 6, 5)], tmp_path,
                                     "Normalised")
    assert "nn.functional.normalize(x, dim=-1)" in source, source
    rows, dot = summary_and_render(SPEC)
    assert rows["norm"].params == 0 and rows["norm"].macs == 0
    assert "p 2, dim -1" in dot


def test_refusal_names_the_batch():
    (error,) = netspec.check(SPEC.replace("{dim: -1}", "{dim: 0}")).errors
    assert "dim 0 is the batch dimension: normalising over it mixes the samples" in \
        error.message, error.message


class Attention(nn.Module):
    """EdgeNeXt's cross-covariance logits: normalised queries times normalised keys."""

    def __init__(self):
        super().__init__()
        self.qk = nn.Linear(5, 10)

    def forward(self, x):
        q, k = self.qk(x).chunk(2, dim=-1)
        return F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)


def test_import_round_trip():
    layers = import_round_trip(nn.Sequential(Attention()), (6, 5), torch.randn(2, 6, 5))
    found = [e for e in layers[0]["layers"] if "Normalize" in e]
    assert [e["Normalize"] for e in found] == [{"dim": -1}] * 2, layers
