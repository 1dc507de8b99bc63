"""The one torch-side module of the ops: what a declared op is in torch.  Imported only when
building, exporting or importing (imports torch).

RNN, LSTM and GRU return (output, state).  In a chain only the output flows on, so the
subclasses here drop the state.  Subclassing (not wrapping) keeps the state_dict keys, the
repr and isinstance checks exactly those of the torch class.  The merge operations are
plain functions called from built forward code."""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import Tensor, nn

from netspec.ops import REGISTRY


class RNN(nn.RNN):
    def forward(self, input: Tensor) -> Tensor:
        return super().forward(input)[0]


class LSTM(nn.LSTM):
    def forward(self, input: Tensor) -> Tensor:
        return super().forward(input)[0]


class GRU(nn.GRU):
    def forward(self, input: Tensor) -> Tensor:
        return super().forward(input)[0]


OUTPUT_ONLY = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def crop_to(x: Tensor, like: Tensor) -> Tensor:
    """Center-crop every spatial dim of ``x`` (dims 2..) to the size of ``like``'s."""
    for dim in range(2, x.dim()):
        start = (x.size(dim) - like.size(dim)) // 2
        x = x.narrow(dim, start, like.size(dim))
    return x


# merge type -> (function, how it combines n inputs)
PAIRWISE = {"Add": operator.add, "Mul": operator.mul}
# into the first input, when build.py knows nothing else holds it (``out += identity``)
IN_PLACE = {"Add": operator.iadd, "Mul": operator.imul}
CONCAT = torch.cat


def torch_class(type_name: str) -> Any:
    """The torch module class a declared module op builds."""
    lt = REGISTRY[type_name]
    if lt.output_only:
        return OUTPUT_ONLY[type_name]
    return getattr(nn, lt.torch_class or lt.name)
