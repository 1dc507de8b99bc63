"""Ops that give several tensors (torch.split, torch.chunk) import with their parts taken by
name: ``a, b = x.chunk(2, 1)`` is a Chunk entry and ``from: chunk.0`` (gMLP's gate, CSP's
split stage); a part by a negative index is named by its number where the count of parts
is fixed (a list of sizes, chunks that divide the dim), refused by name otherwise, as a part
by a computed index is."""

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
    def __init__(self, how):
        super().__init__()
        self.how = how

    def forward(self, x):
        return self.how(x)[-1] + 1


@pytest.mark.parametrize("how, part", [
    (lambda x: x.chunk(2, 1), "chunk.1"),  # 8 channels in 2: 2 parts at every input
    (lambda x: torch.split(x, [2, 2, 4], 1), "split.2"),  # listed sizes: 3 parts
    (lambda x: x.chunk(4, dim=-1), "chunk.3"),
])
def test_the_last_part_is_named_by_its_number_where_the_count_is_fixed(how, part):
    model = LastPart(how)
    imported = model_to_spec(model, (8, 4, 4))
    text = dumps(imported.data)
    assert verify(imported, text).ok and f"from: {part}" in text, text
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        assert torch.equal(netspec.build(text)(x), model(x))


@pytest.mark.parametrize("how, source", [
    (lambda x: x.chunk(3, 1), "chunk"),  # 8 in 3 chunks: 3 parts here, 2 at 4 channels
    (lambda x: torch.split(x, 3, 1), "split"),  # parts of 3: their count follows the size
])
def test_a_part_by_a_negative_index_is_refused_where_the_count_depends_on_the_input(how,
                                                                                    source):
    with pytest.raises(ImportProblem, match=rf"takes part -1 of '{source}'; a spec takes a "
                       r"part by its number from 0"):
        model_to_spec(LastPart(how), (8, 4, 4))
