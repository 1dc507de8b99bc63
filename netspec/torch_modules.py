"""The few torch modules netspec defines itself; imported only when building.

RNN, LSTM and GRU return (output, state).  In a chain only the output flows on, so these
subclasses drop the state.  Subclassing (not wrapping) keeps the state_dict keys, the
repr and isinstance checks exactly those of the torch class."""

from __future__ import annotations

from torch import Tensor, nn


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
