"""RotaryEmbedding (netspec/ops/attention.py): rotary position embedding of queries or keys,
…×heads×L×head_dim, against transformers' Llama code (LlamaRotaryEmbedding's frequencies,
apply_rotary_pos_emb); its rule, its values, and every command on it."""

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
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

import netspec
from netspec.ops import REGISTRY, torch_side
from netspec.ops.torch_side import rotary_embedding


def llama_rotary(x: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """transformers' rotation of x (N×…×L×head_dim) at positions 0…L-1, as LlamaModel
    computes cos and sin once and LlamaAttention applies them (unsqueeze_dim 1)."""
    dim = x.shape[-1]
    try:
        config = LlamaConfig(hidden_size=dim, num_attention_heads=1, head_dim=dim,
                             rope_theta=theta)
    except Exception as exc:  # its config refuses an odd head_dim (a strict dataclass error)
        raise ValueError(str(exc)) from exc
    positions = torch.arange(x.shape[-2]).unsqueeze(0)
    cos, sin = LlamaRotaryEmbedding(config)(x, positions)
    rotated, _ = apply_rotary_pos_emb(x, x, cos, sin)
    return rotated


@st.composite
def case(draw):
    sample = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    dim = draw(st.sampled_from([2, 4, 6, 8, 16, 1, 3, 5, 7]))  # odd ones: torch refuses
    theta = draw(st.sampled_from([10000.0, 500000.0, 100.0, 1.5]))
    return (*sample[:-1], dim) if len(sample) > 1 else sample, theta


@settings(max_examples=examples(100))
@given(drawn=case(), dtype=st.sampled_from(DTYPES))
def test_rotary_agrees_with_transformers(drawn, dtype):
    """Ranks 1 to 4 (batch excluded), even and odd head_dim, every dtype: netspec refuses
    exactly when transformers' code raises or loses the batch (a rank-1 or -2 sample: cos of
    1×1×L×head_dim broadcasts the batch away), else gives its shape and dtype."""
    sample, theta = drawn
    args = {"theta": theta}
    (ours, our_dtype, why), (theirs, their_dtype, their_why) = compare(
        "RotaryEmbedding", args, sample, lambda x: llama_rotary(x, theta), dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: an integer tensor is rotated by cos and sin cast to integers (0 and
        # 1 or 0), which no model means; netspec takes float queries and keys only.  A
        # head_dim of 1 (odd) is broadcast against cos and sin of 2 features: 2 come out
        assert (dtype.startswith("int") and "int" in why) or (
            sample[-1] == 1 and theirs[-1] == 2 and "odd" in why), (drawn, dtype, why)
        return
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, dtype, why, their_why)


@settings(max_examples=examples(40))
@given(heads=st.integers(1, 4), length=st.integers(1, 40), dim=st.sampled_from([2, 8, 16, 64]),
       theta=st.sampled_from([10000.0, 500000.0]),
       dtype=st.sampled_from(["float32", "float64", "bfloat16"]))
def test_values_are_transformers_bits(heads, length, dim, theta, dtype):
    """The built op computes what transformers computes, bit for bit, at any length."""
    spec = netspec.check(f"netspec: 1\ninput: {{shape: [{heads}, 5, {dim}], dtype: {dtype}}}\n"
                         f"layers:\n  - RotaryEmbedding: {{theta: {theta}}}\n")
    model = netspec.build(spec)
    x = torch.randn(2, heads, length, dim).to(getattr(torch, dtype))
    assert torch.equal(model(x), llama_rotary(x, theta))


@pytest.mark.parametrize(("shape", "message", "col"), [
    ("[4, 10, 15]", "head_dim 15 (the last dim of 4×10×15) is odd", 5),
    ("[10, 16]", "expects a sample with at least 3 dimensions (batch excluded), got 10×16", 5),
])
def test_refusals(shape, message, col):
    (error,) = netspec.check(f"netspec: 1\ninput: {shape}\nlayers:\n"
                             "  - RotaryEmbedding: {theta: 500000.0}\n").errors
    assert message in error.message and error.col == col, error.format()


SPEC = """\
netspec: 1
name: Rotated
input: [10, 32]
layers:
  - Linear: {out_features: 32, bias: false}
    name: q_proj
  - Reshape: [0, 0, -1, 8]
  - Transpose: {dim0: 1, dim1: 2}
  - RotaryEmbedding: {theta: 500000.0}
    name: q
"""


def test_build_codegen_summary_render(tmp_path):
    """Built and generated, the op runs at the declared length and at others (L is read
    when it runs); the generated file defines rotary_embedding itself."""
    def reference(m, x):
        return llama_rotary(m.q_proj(x).view(x.shape[0], x.shape[1], -1, 8).transpose(1, 2),
                            500000.0)

    source = build_and_codegen_agree(SPEC, reference, [torch.randn(2, 10, 32),
                                                       torch.randn(3, 17, 32)], tmp_path,
                                     "Rotated")
    assert "x = rotary_embedding(x, theta=500000.0)" in source
    assert "def rotary_embedding(x: torch.Tensor, theta: float = 10000.0)" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["q"].params == 0 and rows["q"].macs == 0 and "θ 500000" in dot


def test_rotary_embedding_is_one_source():
    """Generated files define rotary_embedding from the declaration's text; build calls
    netspec.ops.torch_side.rotary_embedding: they are the same code."""
    functions = (torch_side.rotary_embedding, torch_side.rotary_angles,
                 torch_side.kept_rotary_angles)
    assert "\n\n\n".join(inspect.getsource(f).rstrip() for f in functions) == \
        REGISTRY["RotaryEmbedding"].code.helper


class Rotated(nn.Module):
    """Queries from a projection, rotated by the function build calls: a global of the
    module its forward is in, as in a built model's code."""

    def __init__(self, theta: float):
        super().__init__()
        self.proj, self.theta = nn.Linear(32, 32), theta

    def forward(self, x):
        q = self.proj(x)
        return rotary_embedding(q.view(q.shape[0], q.shape[1], -1, 8).transpose(1, 2),
                                theta=self.theta)


@pytest.mark.parametrize("theta", [10000.0, 500000.0])
def test_import_round_trip(theta):
    """A model calling netspec.ops.torch_side.rotary_embedding imports back as
    RotaryEmbedding, theta written where it is not the default."""
    layers = import_round_trip(Rotated(theta), (10, 32), torch.randn(2, 10, 32))
    assert next(iter(layers[-1])) == "RotaryEmbedding"
    assert layers[-1]["RotaryEmbedding"] == (None if theta == 10000.0 else {"theta": theta})


def test_kept_angles_change_nothing_and_follow_length_dtype_and_mode():
    """The cos and sin kept between calls give the values computed afresh at every length,
    dtype and mode met in turn (a kept angle of another length, dtype or an inference tensor
    reused would be wrong or fail in backward); traced, the angles stay in the graph, so
    the traced function runs at another length."""
    def fresh(x, theta=10000.0):
        torch_side.kept_rotary_angles.__dict__.pop("kept", None)
        return rotary_embedding(x, theta)

    torch.manual_seed(0)
    for length, dtype, theta in ((7, torch.float32, 10000.0), (7, torch.float32, 10000.0),
                                 (9, torch.float32, 10000.0), (9, torch.float64, 10000.0),
                                 (9, torch.float64, 100.0)):
        x = torch.randn(2, 3, length, 8, dtype=dtype)
        expected = fresh(x, theta)
        assert torch_side.kept_rotary_angles.kept[0][0] == length  # kept by the eager call
        assert torch.equal(rotary_embedding(x, theta), expected)
        assert torch.allclose(expected, llama_rotary(x, theta), atol=1e-6)
    x = torch.randn(2, 3, 5, 8)
    with torch.inference_mode():
        rotary_embedding(x)  # keeps inference tensors
    leaf = x.clone().requires_grad_()
    rotary_embedding(leaf).sum().backward()  # not given the inference tensors
    assert leaf.grad is not None
    traced = torch.jit.trace(lambda t: rotary_embedding(t), torch.randn(1, 2, 5, 8))
    longer = torch.randn(1, 2, 11, 8)
    assert torch.equal(traced(longer), fresh(longer))
