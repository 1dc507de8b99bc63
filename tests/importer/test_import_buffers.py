"""Importing what a forward reads besides its children's calls (netspec/importer/buffers.py,
netspec/importer/fx.py): its own buffers, tables indexed by them, a child Linear's weight
given to F.linear with a bias made in forward; timm's BEiT attention whole."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec

beit = pytest.importorskip("timm.models.beit")


def round_trip(model: nn.Module, sample: tuple, atol: float = 0.0) -> str:
    """model -> spec -> build, the reference's state_dict loaded strictly, outputs equal
    (within atol); the spec's text."""
    model = model.eval()
    text = dumps(model_to_spec(model, sample).data)
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *sample)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), rtol=0, atol=atol), \
            (built(x) - model(x)).abs().max()
    return text


class QkvBias(nn.Module):
    """BEiT's projection: a Linear without bias, given learnt q/v biases and zeros for k."""

    def __init__(self, persistent: bool = False):
        super().__init__()
        self.qkv = nn.Linear(8, 24, bias=False)
        self.q_bias = nn.Parameter(torch.randn(8))
        self.register_buffer("k_bias", torch.zeros(8), persistent=persistent)
        self.v_bias = nn.Parameter(torch.randn(8))

    def forward(self, x):
        bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
        return F.linear(x, weight=self.qkv.weight, bias=bias)


@pytest.mark.parametrize("persistent", [False, True])
def test_a_linear_given_a_bias_made_in_forward_round_trips(persistent):
    """F.linear(x, self.qkv.weight, bias): the child's entry, then an Add of the bias
    (F.linear's fused bias, within float rounding); k_bias a ConstantBuffer, in the
    state_dict where the module keeps it."""
    text = round_trip(nn.Sequential(QkvBias(persistent)), (5, 8), atol=1e-6)
    assert "- Linear: {out_features: 24, bias: false}\n        name: qkv" in text, text
    assert "ConstantBuffer: {shape: [8]" + ("}" if persistent else ", persistent: false}") \
        in text, text
    assert "Concat: {dim: 0}" in text and "from: [qkv, cat]" in text, text


class OtherUses(nn.Module):
    def __init__(self, bias: bool, function):
        super().__init__()
        self.qkv = nn.Linear(8, 8, bias=bias)
        self.function = function

    def forward(self, x):
        return self.function(x, self.qkv)


@pytest.mark.parametrize("bias, function", [
    (True, lambda x, m: F.linear(x, m.weight, m.bias * 2)),  # its own bias changed
    (False, lambda x, m: x @ m.weight),  # not its function
    (False, lambda x, m: F.linear(x, m.weight.t(), None)),  # another weight
])
def test_other_uses_of_a_child_s_tensors_are_refused_by_name(bias, function):
    with pytest.raises(ImportProblem) as info:
        model_to_spec(nn.Sequential(OtherUses(bias, function)), (8,))
    assert "module '0' (OtherUses)" in str(info.value) and "qkv" in str(info.value), info.value


def test_beit_s_attention_round_trips():
    """timm's BEiT attention: the qkv bias as above, the relative position bias with a
    class token (RelativePositionIndex, RelativePositionBias) as sdpa's attn_mask."""
    attention = beit.Attention(16, 2, qkv_bias=True, window_size=(2, 3))
    with torch.no_grad():
        attention.relative_position_bias_table.normal_()
        attention.q_bias.normal_()
        attention.v_bias.normal_()
    text = round_trip(nn.Sequential(attention), (7, 16), atol=1e-5)
    assert "RelativePositionIndex: {window_size: [2, 3], class_token: true, persistent: " \
        "false}" in text, text
    assert "RelativePositionBias: {window_size: [2, 3], class_token: true}" in text, text


def test_a_buffer_of_other_values_is_refused_by_name():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.arange(4.0))

        def forward(self, x):
            return x * self.scale

    with pytest.raises(ImportProblem, match=r"its buffer 'scale' \(4, float32\) holds values "
                       "that no netspec op makes"):
        model_to_spec(nn.Sequential(Scaled()), (4,))


class UsesRelPosBias(nn.Module):
    """timm's MaxxViT attention: the parent calls its child's get_bias(), which fx follows
    into the child's table and flat index (view as n×n×heads, unsqueeze, contiguous)."""

    def __init__(self, extra: bool = False):
        super().__init__()
        from timm.layers.pos_embed_rel import RelPosBias

        self.proj = nn.Linear(6, 6)
        self.rel_pos = RelPosBias((2, 3), 2)
        if extra:  # a tensor of its own besides: not the op's alone
            self.rel_pos.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.proj(x) + self.rel_pos.get_bias()


def test_a_child_s_bias_read_by_its_parent_is_a_group_named_as_the_child():
    """The child's table and index are the op's entries in a group named rel_pos: its
    state_dict keys (rel_pos.relative_position_bias_table), the flat non-persistent index a
    RelativePositionIndex."""
    model = nn.Sequential(UsesRelPosBias())
    with torch.no_grad():
        model[0].rel_pos.relative_position_bias_table.normal_()
    text = round_trip(model, (2, 6, 6))
    assert """      - name: rel_pos
        layers:
          - Parameter: {shape: [15, 2]}
            name: relative_position_bias_table
          - RelativePositionIndex: {window_size: [2, 3], persistent: false}
            name: relative_position_index
          - RelativePositionBias: {window_size: [2, 3]}
            from: [relative_position_bias_table, relative_position_index]
""" in text, text
    with pytest.raises(ImportProblem, match=r"uses the tensors of module '0.rel_pos' "
                       r"\(RelPosBias\) directly, and the child holds others besides"):
        model_to_spec(nn.Sequential(UsesRelPosBias(extra=True)), (2, 6, 6))


def coatnet_attention() -> nn.Module:
    """timm's CoAtNet attention on a 4×6 map: the bias from its RelPosBias, whose index it
    keeps flattened, and its output reshaped to (B, -1, H, W) with the sizes of its input."""
    from functools import partial

    from timm.layers.pos_embed_rel import RelPosBias
    from timm.models.maxxvit import Attention2d

    return nn.Sequential(nn.Conv2d(3, 8, 1), Attention2d(
        8, dim_head=4, rel_pos_cls=partial(RelPosBias, window_size=(4, 6))))


def test_coatnet_s_attention_round_trips():
    """The importer runs the module with the index in the shape RelativePositionBias takes
    (timm keeps it flat), to read the reshape's sizes off the run: back on the input's
    grid, an UnflattenAs of its sizes; the bias group, which takes no tensor, follows the
    chunk of q, k, v and takes the module's input."""
    model = coatnet_attention()
    with torch.no_grad():
        model[1].rel_pos.relative_position_bias_table.normal_()
    text = round_trip(model, (3, 4, 6), atol=1e-6)  # sdpa's kernels round apart
    assert """      - UnflattenAs: {dim: 2, start_dim: 2, end_dim: 3}
        name: reshape_1
        from: [reshape, input]
""" in text, text
    assert """      - name: rel_pos
        from: input
        layers:
""" in text, text


def test_an_index_made_on_the_meta_device_asks_for_the_model_with_its_tensors():
    """`netspec import` makes a model on the meta device first; an index buffer a chain
    reads has no values there: made again with them (netspec/pipeline/imported.py)."""
    from netspec.importer.fx import MetaValuesNeeded

    with torch.device("meta"):
        model = coatnet_attention()
    with pytest.raises(MetaValuesNeeded, match=r"'1' .* its index buffer was made on the meta"):
        model_to_spec(model, (3, 4, 6))
