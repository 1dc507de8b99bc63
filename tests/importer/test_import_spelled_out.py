"""Functions that are compositions of ones netspec spells are imported as them:
torch.addcmul(a, b, c, value=v) is a + b * c (* v), as resmlp's Affine writes
``torch.addcmul(self.beta, self.alpha, x)``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netspec
from netspec.importer.fx import dumps, model_to_spec
from netspec.pipeline.imported import verify


class Affine(nn.Module):
    def __init__(self, dim, how):
        super().__init__()
        self.alpha = nn.Parameter(torch.randn(1, 1, dim))
        self.beta = nn.Parameter(torch.randn(1, 1, dim))
        self.how = how

    def forward(self, x):
        return self.how(self.beta, self.alpha, x)


@pytest.mark.parametrize("how, multiplies", [
    (torch.addcmul, 1),
    (lambda a, b, c: torch.addcmul(a, b, c, value=0.5), 2),
    (lambda a, b, c: a.addcmul(b, c), 1),
    (lambda a, b, c: a.addcmul(c, tensor2=b, value=-2.0), 2),
])
def test_addcmul_is_add_and_mul(how, multiplies):
    model = nn.Sequential(nn.Linear(6, 6), Affine(6, how)).eval()
    imported = model_to_spec(model, (5, 6))
    text = dumps(imported.data)
    assert verify(imported, text).ok
    assert text.count("- Mul") == multiplies and text.count("- Add") == 1, text
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 5, 6)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)
