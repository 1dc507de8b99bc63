"""Ops that give several tensors (torch.split, torch.chunk) import with their parts taken by
name: ``a, b = x.chunk(2, 1)`` is a Chunk entry and ``from: chunk.0`` (gMLP's gate, CSP's
split stage); a part by a negative or computed index is refused by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.pipeline.imported import verify


class Gate(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.proj = nn.Conv2d(8, 8, 1)
        self.how = how

    def forward(self, x):
        u, v = self.how(self.proj(x))
        return u * torch.sigmoid(v)


class ThreeParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        parts = torch.split(x, [2, 2, 4], dim=1)
        return torch.cat([parts[2], self.conv(x)[:, :2], parts[0]], 1)


@pytest.mark.parametrize("model, written", [
    (Gate(lambda t: t.chunk(2, dim=1)), ["Chunk: {chunks: 2, dim: 1}", "from: [chunk.0, "]),
    (Gate(lambda t: torch.split(t, 4, 1)), ["Split: {split_size_or_sections: 4, dim: 1}",
                                           "from: [split.0, "]),
    (ThreeParts(), ["Split: {split_size_or_sections: [2, 2, 4], dim: 1}",
                    "from: [split.2, "]),
])
def test_parts_are_taken_by_name(model, written):
    model.eval()
    imported = model_to_spec(model, (8, 4, 4))
    text = dumps(imported.data)
    assert verify(imported, text).ok
    for fragment in written:
        assert fragment in text, text
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)


class LastPart(nn.Module):
    def forward(self, x):
        return x.chunk(2, 1)[-1] + 1


def test_a_part_by_a_negative_index_is_refused():
    with pytest.raises(ImportProblem, match=r"takes part -1 of 'chunk'; a spec takes a part "
                       r"by its number from 0"):
        model_to_spec(LastPart(), (8, 4, 4))
