"""Forwards rewritten before they are read (netspec/importer/rewrites.py): slices of several
dims at once, one after another; a BatchNorm1d over a flattened batch of tokens, over the
tokens' channels (timm's LeViT Subsample and LinearNorm)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, _traced, dumps, model_to_spec

levit = pytest.importorskip("timm.models.levit")


def round_trip(model: nn.Module, sample: tuple) -> str:
    model = model.eval()
    text = dumps(model_to_spec(model, sample).data)
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *sample)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), rtol=0, atol=1e-6)
    return text


class Strided(nn.Module):
    def forward(self, x):
        return x[:, ::2, 1::3, :3]


def test_slices_of_several_dims_are_one_after_another():
    text = round_trip(nn.Sequential(Strided()), (7, 8, 5))
    assert text.count("Slice:") == 3, text
    graph = _traced(Strided())
    items = [n.args[1] for n in graph.nodes if n.op == "call_function"]
    assert items == [(slice(None), slice(None, None, 2)),
                     (slice(None), slice(None), slice(1, None, 3)),
                     (slice(None),) * 3 + (slice(None, 3),)], items


class Mixed(nn.Module):
    def forward(self, x):
        return x[:, 0, ::2]


def test_an_index_that_moves_dims_is_left_as_written():
    with pytest.raises(ImportProblem, match="indexes 2 dims at once"):
        model_to_spec(nn.Sequential(Mixed()), (4, 6))


def test_levit_s_linear_norm_round_trips_in_eval_and_in_training():
    """bn(x.flatten(0, 1)).reshape_as(x) is bn(x.transpose(1, 2)).transpose(1, 2): the
    same outputs, and in training the same batch statistics and running estimates."""
    model = nn.Sequential(levit.LinearNorm(6, 8))
    with torch.no_grad():
        model[0].bn.weight.uniform_(0.5, 2.0)
        model[0].bn.bias.normal_()
        model[0].bn.running_mean.normal_()
        model[0].bn.running_var.uniform_(0.5, 2.0)
    text = round_trip(model, (5, 6))
    assert "Transpose: {dim0: 1, dim1: 2}" in text and "BatchNorm1d" in text, text
    built = netspec.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    model.train()
    built.train()
    x = torch.randn(3, 5, 6)
    assert torch.allclose(built(x), model(x), rtol=0, atol=1e-5)
    for key, value in model.state_dict().items():
        assert torch.allclose(built.state_dict()[key].float(), value.float(), atol=1e-6), key


class NotANorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        return self.fc(x.flatten(0, 1)).reshape_as(x)


def test_another_module_on_a_flattened_batch_is_left_as_written():
    graph = _traced(NotANorm())
    assert [n.target for n in graph.nodes if n.op == "call_method"] == ["flatten",
                                                                       "reshape_as"]
