"""``netspec summary``: a torchinfo-style table of a checked spec, without torch.

Every layer (nested under its group, block or repeat) with its output shape, parameters,
buffers and multiply-accumulates, and totals with the memory of parameters and activations
at a batch size.  Everything comes from the layer declarations (``netspec/layers``): the
parameter count is ``sum(p.numel() for p in model.parameters())`` of the built module, the
buffer count ``sum(b.numel() for b in model.buffers())``, and MACs are the multiply-
accumulates of matrix multiplications and convolutions, what
``torch.utils.flop_counter.FlopCounterMode`` counts, halved (elementwise work is 0).

    >>> import netspec
    >>> s = netspec.summary("specs/zoo/resnet18.yaml", batch=32)   # netspec.summary.summarize
    >>> print(s)                      # the table; s.table(depth=1) for the top level only
    >>> s.as_json()["totals"]["macs"]
"""

from __future__ import annotations

import math
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from netspec.core.diagnostics import SpecError
from netspec.core.graph import Node
from netspec.ops import REGISTRY, Args, fmt
from netspec.pipeline.check import CheckResult, Spec, check

BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4}
PARAM_DTYPE = "float32"  # netspec builds float32 parameters whatever the input dtype
MB = 1e6  # decimal megabytes, as torchinfo prints them


@dataclass
class Row:
    """One line of the summary: a layer, a merge, or a group/block/repeat (its totals)."""

    depth: int  # 1: a top-level entry, 2: inside one of them, ... (torchinfo's count)
    name: str
    qualname: str
    type: str
    kind: str  # layer | merge | group | block | repeat
    output_shape: tuple[int, ...]
    params: int
    buffers: int
    macs: int  # per sample
    dtype: str  # of the output
    buffer_bytes: int = 0
    frozen: int = 0  # parameters that do not require grad (a Parameter's requires_grad)
    activation: bool = True  # False: the output is a Parameter's tensor, not computed
    training_only: bool = False  # feeds only training_only outputs: not run in eval

    @property
    def trainable_params(self) -> int:
        return self.params - self.frozen

    @property
    def output_bytes(self) -> int:
        """One sample's output."""
        return math.prod(self.output_shape) * BYTES[self.dtype]

    @property
    def leaf(self) -> bool:
        return self.kind in ("layer", "merge")

    def as_json(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "name": self.name,
            "qualname": self.qualname,
            "type": self.type,
            "kind": self.kind,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
        }


@dataclass(repr=False)
class Summary:
    """The figures ``netspec summary`` prints: ``rows`` (one per layer, nested), totals
    (``params``, ``trainable_params``, ``macs``, memory), ``table(depth)``, ``as_json()``.
    ``print(summary)`` shows the table."""

    file: str
    name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    output_shape: tuple[int, ...]
    batch: int
    rows: list[Row] = field(default_factory=list)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (f"<Summary {self.file}: {self.name}, batch {self.batch}, "
                f"{self.params:,} parameters, {self.macs:,} MACs>")

    # ------------------------------------------------------------------ totals

    def _top(self) -> list[Row]:
        return [r for r in self.rows if r.depth == 1]

    @property
    def params(self) -> int:
        return sum(r.params for r in self._top())

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self._top())

    @property
    def buffers(self) -> int:
        return sum(r.buffers for r in self._top())

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample's forward pass in eval (entries that feed
        only training_only outputs, as GoogLeNet's aux heads, do not run there)."""
        return sum(r.macs for r in self._top() if not r.training_only)

    @property
    def training_macs(self) -> int:
        """The same in training: every entry runs."""
        return sum(r.macs for r in self._top())

    @property
    def input_bytes(self) -> int:
        return self.batch * math.prod(self.input_shape) * BYTES[self.input_dtype]

    @property
    def activation_bytes(self) -> int:
        """The outputs of every layer and merge at the batch size: what one forward pass
        writes if nothing is in place or a view."""
        return self.batch * sum(r.output_bytes for r in self.rows if r.leaf and r.activation)

    @property
    def forward_backward_bytes(self) -> int:
        """torchinfo's "forward/backward pass size": the outputs of the layers that have
        parameters, and their gradients, at the batch size."""
        return 2 * self.batch * sum(r.output_bytes for r in self.rows
                                    if r.leaf and r.params and r.activation)

    @property
    def param_bytes(self) -> int:
        return self.params * BYTES[PARAM_DTYPE]

    @property
    def buffer_bytes(self) -> int:
        return sum(r.buffer_bytes for r in self._top())

    def totals(self) -> dict[str, int]:
        forward_backward = self.forward_backward_bytes
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.params - self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "macs_batch": self.macs * self.batch,
            "training_macs": self.training_macs,
            "input_bytes": self.input_bytes,
            "activation_bytes": self.activation_bytes,
            "forward_backward_bytes": forward_backward,
            "param_bytes": self.param_bytes,
            "buffer_bytes": self.buffer_bytes,
            "total_bytes": self.input_bytes + forward_backward + self.param_bytes
            + self.buffer_bytes,
        }

    # ------------------------------------------------------------------ output

    def visible(self, depth: int | None = None) -> list[Row]:
        """The rows ``depth`` levels deep (1: the top-level entries only), as ``netspec
        check --depth``; a group cut off shows its children's totals."""
        return [r for r in self.rows if depth is None or r.depth <= depth]

    def as_json(self, depth: int | None = None) -> dict[str, Any]:
        return {
            "file": self.file,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype,
            "output_shape": list(self.output_shape),
            "batch": self.batch,
            "rows": [r.as_json() for r in self.visible(depth)],
            "totals": self.totals(),
        }

    def table(self, depth: int | None = None) -> str:
        """The summary as aligned text, torchinfo's layout: a row per layer, then totals."""
        header = ("Layer (type)", "Output shape", "Params", "Buffers", "MACs")
        rows = [header]
        for r in self.visible(depth):
            rows.append((
                "  " * (r.depth - 1) + f"{r.name} ({r.type})",
                fmt(r.output_shape),
                _count(r.params),
                _count(r.buffers),
                _count(r.macs),
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        widths[0] = max(widths[0], 24)
        lines = [
            "   ".join([row[0].ljust(widths[0])] + [row[c].rjust(widths[c]) for c in (1, 2, 3, 4)])
            for row in rows
        ]
        width = max(len(line) for line in lines)
        heavy, light = "=" * width, "-" * width
        t = self.totals()
        dtype = f" ({self.input_dtype})" if self.input_dtype != "float32" else ""
        out = [
            f"{self.file}: {self.name}, input {fmt(self.input_shape)}{dtype}, batch "
            f"{self.batch:,}; shapes and MACs per sample",
            heavy,
            lines[0],
            heavy,
            *lines[1:],
            heavy,
            f"Params: {t['params']:,} (trainable {t['trainable_params']:,}, "
            f"non-trainable {t['non_trainable_params']:,})",
            f"Buffers: {t['buffers']:,}"
            + (" (non-trainable state: running statistics)" if t["buffers"] else ""),
            f"Output: {fmt(self.output_shape)}",
            f"MACs: {_si(t['macs'])} per sample"
            + (f", {_si(t['macs_batch'])} per batch of {self.batch:,}" if self.batch != 1
               else "")
            + (f" in eval; {_si(t['training_macs'])} in training (with the training_only "
               "outputs)" if t["training_macs"] != t["macs"] else ""),
            light,
            f"Input size (MB): {_mb(t['input_bytes'])}",
            f"Forward/backward pass size (MB): {_mb(t['forward_backward_bytes'])}",
            f"Params size (MB): {_mb(t['param_bytes'])}",
            f"Buffers size (MB): {_mb(t['buffer_bytes'])}",
            f"Estimated total size (MB): {_mb(t['total_bytes'])}",
            heavy,
        ]
        return "\n".join(out)


def _count(n: int) -> str:
    return f"{n:,}" if n else "--"


def _si(n: int) -> str:
    """1.82G, 544.3M, 61.5K: three significant figures with an SI suffix."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= factor:
            value = n / factor
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f}{suffix}"
    return str(n)


def _mb(n: int) -> str:
    return f"{n / MB:,.2f}"


# ---------------------------------------------------------------------- building rows


def _args(r: Node) -> Args:
    return Args.filled(REGISTRY[r.type], r.kwargs)


def _scope(results: list[Node], depth: int, rows: list[Row]) -> None:
    """Rows for one layers list and everything nested in it."""
    for r in results:
        row = Row(depth, r.name, r.qualname or r.name, r.type, r.kind,
                  tuple(r.output_shape), 0, 0, 0, r.output_dtype)
        rows.append(row)
        if r.kind in ("layer", "merge"):
            lt = REGISTRY[r.type]
            a = _args(r)
            row.params = r.params or 0
            row.activation = not lt.takes_none
            if lt.takes_none and not a.values.get("requires_grad", True):
                row.frozen = row.params
            # an op taking several inputs gets the shape at each port
            x = r.input_shapes if lt.takes_several and r.input_shapes else r.input_shape
            row.macs = lt.macs(a, x, r.output_shape)
            buffers = lt.buffers(a, r.input_shape)
            row.buffers = sum(buffers.values())
            row.buffer_bytes = sum(n * BYTES[d] for d, n in buffers.items())
        else:
            start = len(rows)
            _scope(r.children, depth + 1, rows)
            inner = [c for c in rows[start:] if c.depth == depth + 1]
            row.params = sum(c.params for c in inner)
            row.frozen = sum(c.frozen for c in inner)
            row.buffers = sum(c.buffers for c in inner)
            row.buffer_bytes = sum(c.buffer_bytes for c in inner)
            row.macs = sum(c.macs for c in inner)


def summarize(
    source: CheckResult | Spec | str | os.PathLike,
    batch: int = 1,
    input_shape: tuple[int, ...] | None = None,
) -> Summary:
    """The summary of a spec (a path, YAML text, a loaded Spec, or a CheckResult).

    Raises ``SpecError`` with every diagnostic if the spec has errors, ``ValueError`` for a
    batch below 1."""
    if batch < 1:
        raise ValueError(f"batch must be 1 or more, got {batch}")
    result = source if isinstance(source, CheckResult) else check(source, input_shape)
    if not result.ok or result.network is None or not result.layers:
        raise SpecError(result.diagnostics)
    net = result.network
    summary = Summary(result.file, net.name, tuple(net.input_shape), net.input_dtype,
                      tuple(result.output_shape), batch)
    _scope(result.layers, 1, summary.rows)
    training_only = result.training_only()
    for row in summary.rows:
        row.training_only = row.depth == 1 and row.name in training_only
    return summary


class _SummaryModule(types.ModuleType):
    """``netspec.summary(spec)`` as ``torchinfo.summary(model)`` is called, while
    ``netspec.summary.summarize`` and the rest of this module stay where they are."""

    def __call__(self, source: Any, batch: int = 1,
                 input_shape: tuple[int, ...] | None = None) -> Summary:
        return summarize(source, batch, input_shape)


sys.modules[__name__].__class__ = _SummaryModule
