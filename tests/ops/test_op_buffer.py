"""ConstantBuffer (netspec/ops/buffer.py), Concat of tensors without a batch
(netspec/ops/merge.py) and ScaledDotProductAttention's attn_mask without a batch: what
timm's BEiT attention makes of its biases, torch.cat((q_bias, k_bias, v_bias)) with k_bias
a non-persistent buffer of zeros, and its relative position bias as the mask."""

from __future__ import annotations

import pytest
import torch
from conftest import examples
from function_ops import build_and_codegen_agree, summary_and_render
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec
from netspec.ops import REGISTRY, torch_side

# BEiT's qkv bias: learnt query and value biases around a key bias of zeros, added to x
SPEC = """\
netspec: 1
name: Biases
input: [5, 24]
layers:
  - Parameter: {shape: [8], init: normal}
    name: q_bias
  - ConstantBuffer: {shape: [8], persistent: false}
    name: k_bias
  - Parameter: {shape: [8], init: normal}
    name: v_bias
  - Concat: {dim: 0}
    from: [q_bias, k_bias, v_bias]
    name: qkv_bias
  - Add:
    from: [input, qkv_bias]
"""


def cat_spec(shapes: list[tuple], dim: int) -> str:
    entries = "".join(f"  - Parameter: {{shape: {list(s)}}}\n    name: p{i}\n"
                      for i, s in enumerate(shapes))
    names = ", ".join(f"p{i}" for i in range(len(shapes)))
    return (f"netspec: 1\ninput: [4]\nlayers:\n{entries}  - Concat: {{dim: {dim}}}\n"
            f"    from: [{names}]\n    name: joined\n")


@st.composite
def cat_case(draw):
    """2-3 tensors of one rank (now and then another), sizes that match but for one dim
    (now and then not), a dim in range or one past it."""
    rank = draw(st.integers(1, 3))
    base = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    along = draw(st.integers(0, rank - 1))
    shapes = []
    for _ in range(draw(st.integers(2, 3))):
        shape = list(base)
        shape[along] = draw(st.integers(1, 4))
        if draw(st.integers(0, 6)) == 0:
            shape[draw(st.integers(0, rank - 1))] += 1
        if draw(st.integers(0, 8)) == 0:
            shape.append(2)
        shapes.append(tuple(shape))
    dim = draw(st.sampled_from([along, along - rank, rank, -rank - 1]))
    return shapes, dim


@settings(max_examples=examples(100), deadline=None)
@given(drawn=cat_case())
def test_concat_of_tensors_without_a_batch_agrees_with_torch(drawn):
    """torch.cat of Parameters (dim counting their own dims): accepted exactly when torch
    joins them, with its shape, and the result has no batch dimension either."""
    shapes, dim = drawn
    try:
        theirs = tuple(torch.cat([torch.zeros(s) for s in shapes], dim).shape)
    except (RuntimeError, IndexError):
        theirs = None
    result = netspec.check(cat_spec(shapes, dim))
    ours = result.layers[-1].output_shape if result.ok else None
    assert ours == theirs, (drawn, [d.message for d in result.errors])


def test_concat_refusals_name_the_tensors():
    (error,) = netspec.check(cat_spec([(2, 3), (2, 4)], 0)).errors
    assert "cannot concatenate 2×3 from 'p0' and 2×4 from 'p1' along dim 0: all other " \
        "dimensions must match" in error.message, error.message
    (error,) = netspec.check(cat_spec([(2,), (2,)], 1)).errors
    assert "dim 1 is out of range for tensors of 1 dims without a batch; expected a value " \
        "in [-1, 0]" in error.message, error.message
    # a batch and a Parameter: Concat joins samples, not a tensor without a batch
    mixed = cat_spec([(4,)], 0).replace("from: [p0]", "from: [input, p0]")
    (error,) = netspec.check(mixed).errors
    assert "Concat takes a batch of samples, but 'p0' has no batch dimension" in \
        error.message, error.message


@pytest.mark.parametrize("values, persistent, args", [
    ([0.0] * 4, False, {"shape": [4], "persistent": False}),
    ([[1.5, 1.5], [1.5, 1.5]], True, {"shape": [2, 2], "value": 1.5}),
    ([-0.0, -0.0], True, {"shape": [2], "value": -0.0}),
    ([0.0, 1.0], True, None),
    ([[0.0], [0.0, 0.0]], True, None),
    ([1, 1], True, None),  # not a float
    ([float("nan")] * 2, True, None),
])
def test_constant_buffers_are_read_back_exactly(values, persistent, args):
    read = REGISTRY["ConstantBuffer"].read_buffer(values, persistent)
    assert read == args
    if args is not None:
        made = torch_side.make_buffer("ConstantBuffer", args)
        assert made.dtype == torch.float32 and made.tolist() == values
        assert str(made.tolist()) == str(values)  # -0.0 stays -0.0


def test_build_codegen_summary_render_against_beit(tmp_path):
    """The bias is BEiT's torch.cat((q_bias, k_bias, v_bias)); k_bias is no state_dict key,
    as BEiT's is not."""
    beit = pytest.importorskip("timm.models.beit")
    reference = beit.Attention(8, 2, qkv_bias=True)
    model = netspec.build(SPEC)
    assert list(model.state_dict()) == ["q_bias", "v_bias"]
    with torch.no_grad():
        reference.q_bias.normal_()
        reference.v_bias.normal_()
    model.load_state_dict({k: v for k, v in reference.state_dict().items()
                           if k in ("q_bias", "v_bias")}, strict=True)
    x = torch.randn(2, 5, 24)
    expected = x + torch.cat((reference.q_bias, reference.k_bias, reference.v_bias))
    with torch.no_grad():
        assert torch.equal(model(x), expected)
    source = build_and_codegen_agree(
        SPEC, lambda m, x: x + torch.cat((m.q_bias, m.k_bias, m.v_bias)), [x], tmp_path,
        "Biases")
    assert 'self.register_buffer("k_bias", torch.zeros((8,)), persistent=False)' in source
    rows, dot = summary_and_render(SPEC)
    assert rows["k_bias"].params == 0 and rows["k_bias"].buffers == 8
    assert rows["qkv_bias"].params == 0 and rows["q_bias"].params == 8
    assert "ConstantBuffer" in dot


def test_an_attention_mask_without_a_batch_is_broadcast():
    """A 1×heads×L×S Parameter as sdpa's attn_mask meets the batch as torch broadcasts it;
    one whose dim 0 is not 1 is refused, as it would meet the batch."""
    spec = """\
netspec: 1
input: [2, 5, 4]
layers:
  - Parameter: {shape: [1, 2, 5, 5], init: normal}
    name: bias
  - ScaledDotProductAttention:
    from: [input, input, input, bias]
"""
    result = netspec.check(spec)
    assert result.ok and result.output_shape == (2, 5, 4), result.errors
    model = netspec.build(spec).eval()
    x = torch.randn(3, 2, 5, 4)
    with torch.no_grad():
        assert torch.equal(model(x), torch.nn.functional.scaled_dot_product_attention(
            x, x, x, attn_mask=model.bias))
    (error,) = netspec.check(spec.replace("[1, 2, 5, 5]", "[3, 2, 5, 5]")).errors
    assert "meets the batch dimension with size 3" in error.message, error.message
