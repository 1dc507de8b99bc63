"""The one torch-side module of the ops: what a declared op is in torch.  Imported only when
building, exporting or importing (imports torch).

A module op whose torch module returns a tuple (RNN, LSTM and GRU return (output, state))
is built as a subclass that returns only the output that flows on.  Subclassing (not
wrapping) keeps the state_dict keys, the repr and isinstance checks exactly those of the
torch class.  Function ops (the merges) are plain functions called from the built forward."""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import Tensor, nn

from netspec.ops import REGISTRY
from netspec.ops.declare import LayerType


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class FirstOutput:
    """Mixed into a torch module that returns a tuple: forward returns element
    ``flow_index`` only, so the module can sit in a chain."""

    flow_index = 0
    # TorchScript cannot compile super().forward: export traces such a child alone
    script_note = "RNN output-only wrapper"

    def forward(self, input: Tensor) -> Tensor:
        return super().forward(input)[self.flow_index]


def _output_class(op: LayerType) -> type:
    base = _resolve(op.torch.target)
    return type(op.name, (FirstOutput, base), {"__module__": __name__, "__qualname__": op.name,
                                               "flow_index": op.flow_index})


# one-port module ops returning a tuple -> the subclass (named as the op: RNN, LSTM, GRU)
OUTPUT_ONLY = {name: _output_class(op) for name, op in REGISTRY.items()
               if op.torch.module and op.torch.returns is not None and not op.takes_several}
globals().update(OUTPUT_ONLY)  # importable by name, as pickle looks classes up

def _own_class(op: LayerType) -> type:
    """A module op whose class netspec defines (a cell stepped over time): the source that
    generated code writes (Code.helper), so the built model runs the same text."""
    namespace: dict[str, Any] = {"torch": torch, "nn": torch.nn}
    exec(op.code.helper, namespace)  # netspec's own constant source, not the user's
    cls = namespace[op.name]
    cls.__module__ = __name__
    # TorchScript cannot compile a class without a source file (nor a cell loop's
    # super().forward): export traces it alone (a cell loop unrolled over the spec's steps;
    # the batch stays symbolic)
    cls.script_note = "cell loop, unrolled over its steps" if op.name.endswith("Loop") else \
        f"{op.name}, traced"
    return cls


OWN_CLASSES = {name: _own_class(op) for name, op in REGISTRY.items()
               if op.torch.target == f"{__name__}.{name}" and op.code.helper}
globals().update(OWN_CLASSES)  # importable by name, as torch_class and pickle look them up


def crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Center-crop every spatial dim of x (dims 2..) to the size of like's."""
    for dim in range(2, x.dim()):
        start = (x.size(dim) - like.size(dim)) // 2
        x = x.narrow(dim, start, like.size(dim))
    return x


def window_partition(x: torch.Tensor, p: int) -> torch.Tensor:
    """B×C×H×W -> B×(H/p·W/p)×(p·p)×C: non-overlapping p×p windows of C-vectors."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), p * p, C)


def window_departition(
    x: torch.Tensor, p: int, h_partitions: int, w_partitions: int
) -> torch.Tensor:
    """B×(h·w)×(p·p)×C -> B×C×(h·p)×(w·p): the windows put back on the map."""
    B, _, _, C = x.shape
    x = x.reshape(B, h_partitions, w_partitions, p, p, C)
    x = x.permute(0, 5, 1, 3, 2, 4)
    return x.reshape(B, C, h_partitions * p, w_partitions * p)


def pad_to_multiple(x: torch.Tensor, multiple: list[int]) -> torch.Tensor:
    """Zeros after each of x's last len(multiple) dims, up to a multiple of its entry."""
    pad: list[int] = []
    for i in range(1, len(multiple) + 1):
        pad += [0, (multiple[-i] - x.shape[-i] % multiple[-i]) % multiple[-i]]
    return nn.functional.pad(x, pad)


def unflatten_as(x: torch.Tensor, like: torch.Tensor, dim: int, start_dim: int,
                 end_dim: int) -> torch.Tensor:
    """x's dim split into the sizes like has at its dims start_dim..end_dim, read when the
    model runs (tokens B×C×N put back on the H×W grid of the map they came from)."""
    start, end = start_dim % like.dim(), end_dim % like.dim()
    return x.unflatten(dim, like.shape[start:end + 1])


def rotary_embedding(x: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoFormer, Llama) of x, N×heads×L×head_dim: the pair
    (i, i + head_dim / 2) of position p turned by the angle p * theta ** (-2i / head_dim)."""
    dim = x.shape[-1]
    if torch.jit.is_scripting():
        cos, sin = rotary_angles(x, theta)
    else:
        cos, sin = kept_rotary_angles(x, theta)
    rotated = torch.cat((-x[..., dim // 2 :], x[..., : dim // 2]), dim=-1)
    return x * cos + rotated * sin


def rotary_angles(x: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The cos and sin of rotary_embedding's angles at x's length, device and dtype."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float, device=x.device) / dim))
    positions = torch.arange(x.shape[-2], dtype=torch.float, device=x.device)
    freqs = positions[:, None] * inv_freq
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos().to(x.dtype), angles.sin().to(x.dtype)


@torch.jit.unused
def kept_rotary_angles(x: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """rotary_angles, kept on this function for the last length, device and dtype when it
    runs eagerly, so the layers of a forward compute them once, as transformers' model
    does; traced, compiled or exported, they are computed in the graph."""
    length = x.shape[-2]
    if type(length) is not int or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return rotary_angles(x, theta)
    if torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export():
        return rotary_angles(x, theta)
    # inference tensors cannot be saved for backward: not shared with grad-mode runs
    key = (length, x.shape[-1], theta, x.device, x.dtype, torch.is_inference_mode_enabled())
    kept = kept_rotary_angles.__dict__.get("kept")
    if kept is None or kept[0] != key:
        kept = kept_rotary_angles.kept = (key, *rotary_angles(x, theta))
    return kept[1], kept[2]


def torch_class(type_name: str, raw: bool = False) -> Any:
    """The torch module class a declared module op builds (``raw``: the torch class even
    where it returns a tuple)."""
    if not raw and type_name in OUTPUT_ONLY:
        return OUTPUT_ONLY[type_name]
    return _resolve(REGISTRY[type_name].torch.target)


def function(op: LayerType) -> Any:
    """The function a function op calls."""
    return _resolve(op.torch.target)


def inplace_function(op: LayerType) -> Any:
    """The in-place variant of a fold op (``out += x``)."""
    return _resolve(op.torch.inplace)


def make_buffer(type_name: str, kwargs: dict[str, Any]) -> torch.Tensor:
    """A buffer entry's tensor: the op's function of its arguments."""
    op = REGISTRY[type_name]
    values = {a.name: kwargs.get(a.name, a.default) for a in op.args}
    return function(op)(*op.torch.arguments(values, ()))


def relative_position_index(
    height: int,
    width: int,
    class_token: bool = False,
) -> torch.Tensor:
    """(h·w)×(h·w) indices into a (2h-1)·(2w-1)-row table of relative position biases; with
    a class token, (h·w+1)×(h·w+1), its pairs at the three rows after those."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords_flat = torch.stack([rows.flatten(), cols.flatten()])
    relative = (coords_flat[:, :, None] - coords_flat[:, None, :]).permute(1, 2, 0)
    index = (relative[:, :, 0] + height - 1) * (2 * width - 1) + relative[:, :, 1] + width - 1
    if class_token:  # BEiT's: to, from and to itself the class token, the rows after
        offsets = (2 * height - 1) * (2 * width - 1)
        index = torch.nn.functional.pad(index, [1, 0, 1, 0])
        index[0, 0:] = offsets
        index[0:, 0] = offsets + 1
        index[0, 0] = offsets + 2
    return index


def relative_position_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """1×heads×N×N: each head's bias for every pair of the N positions of a window."""
    n = index.shape[0]
    bias = table[index.reshape(-1)].reshape(n, n, -1)
    return bias.permute(2, 0, 1).contiguous().unsqueeze(0)


def attention_bias_index(
    height: int,
    width: int,
    stride: int = 1,
) -> torch.Tensor:
    """Nq×(h·w): |r1 - r2|·w + |c1 - c2| for every query position (every stride-th row and
    column of an h×w map) and every position of the map."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    keys = torch.stack([rows.flatten(), cols.flatten()])
    rows, cols = torch.meshgrid(
        torch.arange(0, height, stride), torch.arange(0, width, stride), indexing="ij"
    )
    queries = torch.stack([rows.flatten(), cols.flatten()])
    offsets = (queries[:, :, None] - keys[:, None, :]).abs()
    return offsets[0] * width + offsets[1]


def attention_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """heads×N×N: each head's bias for every pair of the N positions."""
    return table[:, index]


def make_parameter(kwargs: dict[str, Any]) -> torch.nn.Parameter:
    """A Parameter entry's tensor, initialised as its arguments say (torch.nn.init)."""
    data = torch.empty(tuple(kwargs["shape"]))
    init = kwargs.get("init", "zeros")
    with torch.no_grad():
        if init in ("zeros", "ones"):
            data.fill_(0.0 if init == "zeros" else 1.0)
        elif init == "constant":
            data.fill_(kwargs.get("value", 0.0))
        elif init == "normal":
            data.normal_(kwargs.get("mean", 0.0), kwargs.get("std", 1.0))
        elif init == "uniform":
            low, high = kwargs.get("a"), kwargs.get("b")
            data.uniform_(0.0 if low is None else low, 1.0 if high is None else high)
        else:  # trunc_normal
            low, high = kwargs.get("a"), kwargs.get("b")
            torch.nn.init.trunc_normal_(data, kwargs.get("mean", 0.0), kwargs.get("std", 1.0),
                                        -2.0 if low is None else low, 2.0 if high is None else high)
    return torch.nn.Parameter(data, requires_grad=kwargs.get("requires_grad", True))
