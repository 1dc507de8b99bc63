"""Forward parameters after the input are traced at the values a netspec model runs them
with (fx's concrete_args): their defaults (timm's ``pre_logits=False``, ``attn_mask=None``),
or the constants the parent's call passes (``self.block(x, 2.0)``, ``blk(x, bias=None)`` in
a chain over a ModuleList).  A tensor passed besides the input is refused by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.pipeline.imported import verify


def round_trip(model: nn.Module, shape: tuple[int, ...]) -> str:
    model.eval()
    imported = model_to_spec(model, shape)
    text = dumps(imported.data)
    assert verify(imported, text).ok
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)
    return text


class Head(nn.Module):
    """timm's ClassifierHead, cut down: a flag read by Python control flow."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x, pre_logits: bool = False):
        x = x.mean((2, 3))
        if pre_logits:
            return x
        return self.fc(x)


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)

    def forward(self, x, scale: float = 1.0, bias=None):
        x = self.conv(x) * scale
        return x if bias is None else x + bias


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Scaled()
        self.blocks = nn.ModuleList([Scaled(), Scaled()])
        self.head = Head()

    def forward(self, x, attn_mask=None, return_features: bool = False):
        x = self.block(self.stem(x), 2.0)
        for blk in self.blocks:
            x = blk(x, scale=0.5, bias=None)
        if return_features:
            return x
        return self.head(x)


def test_flags_are_traced_at_their_defaults_or_the_constants_passed():
    text = round_trip(Net(), (3, 8, 8))
    assert "Mul: {other: 2.0}" in text and text.count("Mul: {other: 0.5}") == 2
    assert "other: 1.0" not in text


def test_the_constant_a_parent_passes_is_the_one_traced():
    class PreLogits(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Sequential()
            self.head.add_module("pool", Head())

        def forward(self, x):
            return self.head.pool(x, pre_logits=True)

    text = round_trip(nn.Sequential(nn.Conv2d(3, 8, 1), Head()), (3, 4, 4))
    assert "Linear" in text
    with pytest.raises(ImportProblem, match=r"'head.pool.fc' \(Linear\) has parameters but "
                       r"the forward \(in eval mode\) does not use it"):
        model_to_spec(PreLogits().eval(), (8, 4, 4))


class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Scaled()

    def forward(self, x):
        return self.block(x, 1.0, x)


class LayerWithConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Softmax(1)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x, 1)
        return x


def test_a_tensor_besides_the_input_is_an_input_of_its_group():
    """block(x, 1.0, x): the constant is traced with, the tensor is the group's input bias
    (tests/importer/test_import_ports.py has more)."""
    text = round_trip(Skip(), (8, 4, 4))
    assert "  - name: block\n    from: [input, input]\n    inputs: [x, bias]\n" in text


def test_a_tensor_into_a_layer_of_a_chain_is_refused():
    with pytest.raises(ImportProblem, match=r"'layers.0' is not called with one tensor"):
        model_to_spec(LayerWithConstant().eval(), (8, 4, 4))


def test_a_forward_argument_that_is_used_and_has_no_default_is_refused():
    class TwoInputs(nn.Module):
        def forward(self, x, y):
            return x + y

    with pytest.raises(ImportProblem, match="its forward takes more than one input"):
        model_to_spec(TwoInputs(), (4,))


def test_a_layer_subclass_in_a_chain_is_written_in_its_place():
    timm = pytest.importorskip("timm")
    head = nn.Sequential()
    head.add_module("norm", timm.layers.LayerNorm2d(8))
    head.add_module("flatten", nn.Flatten(1))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 1)
            self.head = head

        def forward(self, x):
            return self.head.flatten(self.head.norm(self.stem(x)))

    text = round_trip(Model(), (3, 2, 2))
    # timm's LayerNorm2d traces as torchvision's, which netspec declares: one entry, in place
    assert "      - LayerNorm2d: {eps: 1.0e-06}\n        name: norm\n      - Flatten:" in text
