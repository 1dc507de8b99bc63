"""RMSNorm (netspec/ops/norm.py, torch.nn.RMSNorm) against transformers' LlamaRMSNorm, which
Llama's zoo spec stands in for with it: LlamaRMSNorm normalises in float32 and multiplies
its weight after casting back; nn.RMSNorm over the last dim with the same eps agrees in
float32."""

from __future__ import annotations

import torch
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.models.llama.modeling_llama import LlamaRMSNorm

import netspec


@settings(max_examples=examples(60))
@given(lead=st.lists(st.integers(1, 6), min_size=0, max_size=2), dim=st.integers(1, 300),
       eps=st.sampled_from([1e-6, 1e-5, 1e-8, 0.1]), scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_rms_norm_is_llama_s(lead, dim, eps, scale):
    """Drawn shapes (the last dim normalised), eps and input scales, float32: netspec's
    RMSNorm built with LlamaRMSNorm's weight gives its output within float32 rounding."""
    spec = netspec.check(f"netspec: 1\ninput: {[*lead, dim]}\n"
                         f"layers:\n  - RMSNorm: {{normalized_shape: [{dim}], eps: {eps:.1e}}}\n")
    assert spec.ok and spec.output_shape == (*lead, dim)
    ours = netspec.build(spec).eval()[0]
    theirs = LlamaRMSNorm(dim, eps=eps).eval()
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, *lead, dim) * scale
    with torch.no_grad():
        expected = theirs(x)
        assert torch.allclose(ours(x), expected, rtol=1e-5, atol=1e-6)
