"""Few-word descriptions of an op's arguments for diagram boxes (``Draw.key_args``): what a
reader needs to tell two layers of a type apart.  Pure Python."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KeyArgs = Callable[[dict[str, Any]], str]


def is_zero(value: Any) -> bool:
    return value in (0, None) or (isinstance(value, (list, tuple)) and not any(value))


def is_one(value: Any) -> bool:
    return value == 1 or (isinstance(value, (list, tuple)) and all(v == 1 for v in value))


def size(value: Any, n: int = 1) -> str:
    """'3×3' for a list, the value alone, or repeated ``n`` times for an n-d layer's int."""
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return "×".join([str(value)] * n) if n > 1 else str(value)


def conv_key_args(n: int) -> KeyArgs:
    def text(kw: dict[str, Any]) -> str:
        parts = [size(kw.get("kernel_size", "?"), n), f"out {kw.get('out_channels', '?')}"]
        if not is_one(kw.get("stride", 1)):
            parts.append(f"stride {size(kw['stride'])}")
        pad = kw.get("padding", 0)
        if isinstance(pad, str):
            parts.append(f"pad {pad}")
        elif not is_zero(pad):
            parts.append(f"pad {size(pad)}")
        if not is_zero(kw.get("output_padding", 0)):
            parts.append(f"out pad {size(kw['output_padding'])}")
        if not is_one(kw.get("dilation", 1)):
            parts.append(f"dilation {size(kw['dilation'])}")
        groups = kw.get("groups", 1)
        if groups != 1:
            depthwise = groups == kw.get("in_channels")
            parts.append("depthwise" if depthwise else f"groups {groups}")
        return ", ".join(parts)

    return text


def pool_key_args(n: int) -> KeyArgs:
    def text(kw: dict[str, Any]) -> str:
        parts = []
        if "norm_type" in kw:
            parts.append(f"p {kw['norm_type']}")
        kernel = kw.get("kernel_size", "?")
        parts.append(size(kernel, n))
        stride = kw.get("stride")
        if stride is not None and stride != kernel:
            parts.append(f"stride {size(stride)}")
        if not is_zero(kw.get("padding", 0)):
            parts.append(f"pad {size(kw['padding'])}")
        if kw.get("ceil_mode"):
            parts.append("ceil")
        return ", ".join(parts)

    return text


def adaptive_pool_key_args(n: int) -> KeyArgs:
    return lambda kw: f"output {size(kw.get('output_size', '?'), n)}"


def linear_key_args(kw: dict[str, Any]) -> str:
    return f"in {kw.get('in_features', '?')}, out {kw.get('out_features', '?')}"


def embedding_key_args(kw: dict[str, Any]) -> str:
    return f"{kw.get('num_embeddings', '?')} × {kw.get('embedding_dim', '?')}"


def dropout_key_args(kw: dict[str, Any]) -> str:
    return f"p {kw.get('p', 0.5)}"


def rnn_key_args(kw: dict[str, Any]) -> str:
    parts = [f"in {kw.get('input_size', '?')}, hidden {kw.get('hidden_size', '?')}"]
    if kw.get("num_layers", 1) != 1:
        parts.append(f"{kw['num_layers']} layers")
    if kw.get("bidirectional"):
        parts.append("bidirectional")
    return ", ".join(parts)


def encoder_key_args(kw: dict[str, Any]) -> str:
    return f"d {kw.get('d_model', '?')}, {kw.get('nhead', '?')} heads"


def stochastic_depth_key_args(kw: dict[str, Any]) -> str:
    return f"p {kw.get('p', '?')}, {kw.get('mode', '?')}"
