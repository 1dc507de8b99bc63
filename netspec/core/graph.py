"""The intermediate graph every emitter reads: one Node per entry of the network, after
resolve has expanded blocks, repeats, ``if:``, ``first:`` and ``from:``, and infer has given
it its shape, dtype and parameter count.

A node keeps what the user wrote (``written``, ``path``) beside what was resolved
(``kwargs``), so an emitter never goes back to the YAML: codegen writes the arguments as
written, render shows a block's parameters and places errors by ``path``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    index: int  # its place in the list that holds it (a repeat's copy: the copy number)
    name: str
    type: str  # op name; a block's name; "group"; "Conv2d×3" for a repeat
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None  # None: not known (an error here or before)
    params: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)  # what the torch constructor gets
    kind: str = "layer"  # layer | merge | group | block | repeat
    qualname: str = ""  # dotted module path, as in state_dict keys
    sources: list[str] = field(default_factory=list)  # inputs: names in this list or "input"
    output: str | None = None  # group/block/repeat: the child whose output is the result
    children: list[Node] = field(default_factory=list)
    output_dtype: str | None = None  # the dtype it hands on (summary's memory counts)
    # an op taking several inputs: the shape at each port (optional ports filled in)
    input_shapes: list = field(default_factory=list)
    # where the entry is written: a block body's entries point into blocks:, a repeat's
    # copies at the repeat entry
    path: tuple = ()
    # the entry as written: a block body's before its parameters are substituted, a
    # repeat's copy with first: merged into the first one
    written: Any = None
    block: str | None = None  # the block whose body holds the entry
    copy: int | None = None  # k for the k-th copy of a repeat
    # an op giving several tensors (Split's parts "0", "1", ...): (output name, shape) of
    # each, taken by later entries as from: name.0; output_shape is the first's
    outputs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    # outputs taken by name besides the one that flows on (an LSTM's h_n, c_n): (name,
    # shape without the batch, which is dim 1 of a recurrent state)
    states: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    # parameters tied to an earlier entry's: {"weight": "embed.weight"} (qualified names);
    # params counts only the entry's own
    ties: dict[str, str] = field(default_factory=dict)
    # a group or block declaring inputs:/outputs: (forward(self, x, shortcut) -> (a, b)): its
    # inputs' names in forward's order, and its outputs as (key, source) each, returned as
    # "tuple" or "dict" ("tensor": one output); its parts are in outputs as an op's are
    port_inputs: list[str] = field(default_factory=list)
    port_outputs: list[tuple[str, str]] = field(default_factory=list)
    returns: str = "tensor"

    def as_json(self) -> dict[str, Any]:
        out = {
            "index": self.index,
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params": self.params,
        }
        if self.kind != "layer":
            out["kind"] = self.kind
        if self.outputs:
            out["outputs"] = {k: list(v) for k, v in self.outputs}
        if self.sources:
            out["from"] = self.sources
        if self.children:
            out["children"] = [c.as_json() for c in self.children]
        return out

    def walk(self, depth: int = 0):
        """(depth, node) for this node and everything nested in it."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)
