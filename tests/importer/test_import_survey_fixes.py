"""What the importer survey found: a left-out default spelled another way by the module
(s3d's MaxPool3d keeps padding=(0, 0, 0)), and the GoogLeNet hint only where it applies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec


def test_a_default_kept_in_another_spelling_imports():
    reference = nn.Sequential(nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2),
                                           padding=(0, 0, 0))).eval()
    text = dumps(model_to_spec(reference, (3, 4, 8, 8)).data)
    assert "padding" not in text  # the default, left out
    x = torch.randn(2, 3, 4, 8, 8)
    assert torch.equal(netspec.build(text)(x), reference(x))


class UnusedHead(nn.Module):
    """A head with parameters that neither the eval nor the training forward calls (aux
    heads that do run in training import as training_only outputs: test_import_outputs)."""

    def __init__(self, aux_logits: bool | None = None):
        super().__init__()
        if aux_logits is not None:
            self.aux_logits = aux_logits
        self.fc = nn.Linear(4, 4)
        self.aux = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize("aux, hinted", [(None, False), (False, False), (True, True)])
def test_aux_logits_hint_only_for_a_model_with_aux_heads_on(aux, hinted):
    with pytest.raises(ImportProblem) as info:
        model_to_spec(UnusedHead(aux), (4,))
    assert ("pass aux_logits=False" in str(info.value)) == hinted
    assert "GoogLeNet" not in str(info.value)


class SideBySide(nn.Module):
    """DeepLabV3's ASPP: each module of a ModuleList run on the same input, concatenated."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 3, padding=1)])

    def forward(self, x):
        return torch.cat([conv(x) for conv in self.convs], dim=1)


def test_a_container_run_side_by_side_imports_as_branches():
    layers = model_to_spec(SideBySide(), (3, 8, 8)).data["layers"]
    assert set(layers[0]) == {"name", "branches"} and layers[0]["name"] == "convs"
    assert "Concat" in layers[1] and layers[1]["from"] == "convs"
