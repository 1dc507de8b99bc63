"""`netspec import` of modules taking several tensors (nn.MultiheadAttention: query, key and
value) and of modules whose arguments the op's declaration reads (read_module): reference
models import, check, build, load their state_dict strictly and give the same eval outputs;
forward arguments a spec cannot express are refused naming the module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.ops import REGISTRY
from netspec.pipeline.imported import verify

E, L = 16, 6


def round_trip(model: nn.Module, shape: tuple[int, ...], atol: float = 1e-6) -> str:
    """Import -> check -> build -> strict load -> the same eval outputs; the spec text."""
    torch.manual_seed(0)
    model.eval()
    imported = model_to_spec(model, shape)
    text = dumps(imported.data)
    result = verify(imported, text)
    assert result.ok, [d.format() for d in result.errors]
    built = netspec.build(text)
    assert list(built.state_dict()) == list(model.state_dict())
    built.load_state_dict(model.state_dict(), strict=True)
    built.eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        expected, got = model(x), built(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= atol
    assert expected.abs().max().item() > 100 * atol  # the comparison means something
    return text


class SelfAttention(nn.Module):
    def __init__(self, batch_first: bool = True, **options):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=batch_first, **options)
        self.fc = nn.Linear(E, 5)

    def forward(self, x):
        return self.fc(self.attn(x, x, x)[0])


class Unpacked(nn.Module):
    """out, _ = attn(...), need_weights=False: the weights are never used."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, E)
        self.attn = nn.MultiheadAttention(E, 2, batch_first=True)

    def forward(self, x):
        x = self.proj(x)
        out, _ = self.attn(x, x, x, need_weights=False)
        return out + x


class CrossAttention(nn.Module):
    """The query from one branch, key and value from another (kdim/vdim: other sizes)."""

    def __init__(self, kdim: int | None = None, vdim: int | None = None, same_kv=True):
        super().__init__()
        self.q = nn.Linear(8, E)
        self.k = nn.Linear(8, kdim or E)
        self.v = None if same_kv else nn.Linear(8, vdim or E)
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True, kdim=kdim, vdim=vdim)

    def forward(self, x):
        q, k = self.q(x), self.k(x)
        v = k if self.v is None else self.v(x)
        return self.attn(q, k, v)[0]


class SideBranch(nn.Module):
    """Self-attention of the input, with another entry in between: from: input."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(E, E)
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)

    def forward(self, x):
        y = self.fc(x)
        return self.attn(x, x, x)[0] + y


class ValueIsQuery(nn.Module):
    """attn(q, k, q): the value is not the key, so all three are written."""

    def __init__(self):
        super().__init__()
        self.k = nn.Linear(E, E)
        self.attn = nn.MultiheadAttention(E, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, self.k(x), x)[0]


class ByKeyword(nn.Module):
    def __init__(self, **call):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)
        self.call = call

    def forward(self, x):
        return self.attn(query=x, key=x, value=x, **self.call)[0]


@pytest.mark.parametrize("model, written", [
    (SelfAttention(), "  - MultiheadAttention: {num_heads: 4, batch_first: true}\n"
                      "    name: attn\n  - Linear"),
    (SelfAttention(batch_first=False), "  - MultiheadAttention: {num_heads: 4}\n    name: attn\n"),
    (SelfAttention(bias=False, add_bias_kv=True, add_zero_attn=True, dropout=0.25),
     "MultiheadAttention: {num_heads: 4, dropout: 0.25, bias: false, add_bias_kv: true, "
     "add_zero_attn: true, batch_first: true}"),
    (Unpacked(), "  - MultiheadAttention: {num_heads: 2, batch_first: true}\n    name: attn\n"
                 "  - Add:\n    name: add\n    from: [attn, proj]\n"),
    (CrossAttention(), "    name: attn\n    from: [q, k]\n"),
    (CrossAttention(kdim=12, vdim=20, same_kv=False),
     "MultiheadAttention: {num_heads: 4, kdim: 12, vdim: 20, batch_first: true}\n"
     "    name: attn\n    from: [q, k, v]\n"),
    (CrossAttention(vdim=20, same_kv=False), "vdim: 20, batch_first: true}\n"
                                             "    name: attn\n    from: [q, k, v]\n"),
    (SideBranch(), "    name: attn\n    from: input\n  - Add:\n    name: add\n"
                   "    from: [attn, fc]\n"),
    (ValueIsQuery(), "    name: attn\n    from: [input, k, input]\n"),
    (ByKeyword(need_weights=True, average_attn_weights=False), "    name: attn\n"),
], ids=["self", "self-seq-first", "options", "unpacked", "cross", "kdim-vdim", "vdim",
        "side-branch", "value-is-query", "keywords"])
def test_attention_round_trip(model, written):
    shape = (L, 8) if isinstance(model, (Unpacked, CrossAttention)) else (L, E)
    text = round_trip(model, shape)
    assert written in text, text


def test_self_attention_writes_no_from():
    text = round_trip(ByKeyword(), (L, E))
    assert "from:" not in text and "MultiheadAttention: {num_heads: 4, batch_first: true}" in text


class Masked(nn.Module):
    """A mask computed in forward (by a layer: tracing gets as far as the attention)."""

    def __init__(self, keyword: str):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)
        self.mask = nn.Linear(E, L)
        self.keyword = keyword

    def forward(self, x):
        return self.attn(x, x, x, **{self.keyword: self.mask(x)})[0]


class Causal(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, None, True, None, True, True)[0]


class UsesWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)
        self.fc = nn.Linear(L, E)

    def forward(self, x):
        out, weights = self.attn(x, x, x, need_weights=True)
        return out + self.fc(weights)


class ReturnsBoth(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x)[1]


class Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, scale=2.0)[0]


class SingleQuery(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x)[0]


@pytest.mark.parametrize("model, fragments", [
    (Masked("attn_mask"), ["module 'attn' (MultiheadAttention) is called with attn_mask=a "
                           "tensor (fx node", "a spec calls it with attn_mask=None"]),
    (Masked("key_padding_mask"), ["module 'attn' (MultiheadAttention) is called with "
                                  "key_padding_mask=a tensor (fx node 'mask')"]),
    (Causal(), ["module 'attn' (MultiheadAttention) is called with is_causal=True",
                "is_causal=False"]),
    (UsesWeights(), ["module 'attn' (MultiheadAttention) returns a tuple, and the forward of "
                     "the model (UsesWeights) uses its attn_weights (fx node 'getitem_1'); a "
                     "spec carries on only its attn_output"]),
    (ReturnsBoth(), ["module 'attn' (MultiheadAttention) returns a tuple", "its attn_weights"]),
    (Unknown(), ["module 'attn' (MultiheadAttention) is called with the argument 'scale'"]),
    (SingleQuery(), ["module 'attn' (MultiheadAttention) is called without its key"]),
])
def test_what_attention_cannot_express_is_named(model, fragments):
    with pytest.raises(ImportProblem) as info:
        model_to_spec(model, (L, E))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


class AttentionBlock(nn.Module):
    """A module returning attention's tuple, as torch's layers do: its caller unpacks it."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(E, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x)


class Unpacks(nn.Module):
    def __init__(self, use_weights: bool = False):
        super().__init__()
        self.proj = nn.Linear(8, E)
        self.block = AttentionBlock()
        self.fc = nn.Linear(E, 5)
        self.use_weights = use_weights

    def forward(self, x):
        out, weights = self.block(self.proj(x))
        return self.fc(out) + weights.sum() if self.use_weights else self.fc(out)


class LSTMBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, E, batch_first=True)

    def forward(self, x):
        return self.lstm(x)


class UnpacksLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = LSTMBlock()
        self.fc = nn.Linear(E, 5)

    def forward(self, x):
        out, _ = self.block(x)
        return self.fc(out)


@pytest.mark.parametrize("model", [Unpacks(), UnpacksLSTM()], ids=["attention", "lstm"])
def test_a_group_returning_a_tuple_flows_on_by_its_element(model):
    text = round_trip(model, (L, 8))
    assert "  - name: block\n    layers:\n" in text


def test_the_weights_out_of_a_group_are_refused():
    with pytest.raises(ImportProblem, match=r"module 'block' \(AttentionBlock\) returns a tuple, "
                       r"and the forward of the model \(Unpacks\) uses its attn_weights"):
        model_to_spec(Unpacks(use_weights=True), (L, 8))


def test_a_lone_attention_module_is_refused_with_advice():
    with pytest.raises(ImportProblem, match="single MultiheadAttention layer; wrap it in a "
                       "module whose forward calls it"):
        model_to_spec(nn.MultiheadAttention(E, 4), (L, E))


class IndexedLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)[0]


def test_indexing_a_module_returning_one_tensor_is_refused():
    """fc(x)[0] is the first sample, not fc's output (this imported as fc alone before)."""
    with pytest.raises(ImportProblem, match="indexing is not expressible"):
        model_to_spec(IndexedLinear(), (4,))


# ----------------------------------------------------------------------- read_module


class Encoder(nn.Module):
    def __init__(self, activation="relu", **options):
        super().__init__()
        self.fc = nn.Linear(8, E)
        self.enc = nn.TransformerEncoderLayer(E, 4, 32, 0.0, activation, batch_first=True,
                                              **options)

    def forward(self, x):
        return self.enc(self.fc(x))


@pytest.mark.parametrize("activation, options, written", [
    ("relu", {}, "TransformerEncoderLayer: {nhead: 4, dim_feedforward: 32, dropout: 0.0, "
                 "batch_first: true}"),
    ("gelu", {"norm_first": True, "bias": False, "layer_norm_eps": 1e-6},
     "TransformerEncoderLayer: {nhead: 4, dim_feedforward: 32, dropout: 0.0, activation: gelu, "
     "layer_norm_eps: 1.0e-06, batch_first: true, norm_first: true, bias: false}"),
])
def test_encoder_layer_arguments_read_by_its_declaration(activation, options, written):
    text = round_trip(Encoder(activation, **options), (L, 8), atol=1e-5)
    assert written in text, text


def test_encoder_layer_with_another_activation_is_refused():
    with pytest.raises(ImportProblem, match=r"module 'enc' \(TransformerEncoderLayer\): its "
                       "activation is not 'relu' or 'gelu'"):
        model_to_spec(Encoder(F.silu), (L, 8))


def test_importer_code_names_no_op():
    """Everything the importer needs of an op is on its declaration: no string in its
    code is an op's name."""
    names = set(REGISTRY)
    for path in sorted(Path(netspec.__file__).parent.joinpath("importer").glob("*.py")):
        tree = ast.parse(path.read_text())
        found = [(node.lineno, node.value) for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and node.value in names]
        assert not found, (path.name, found)
