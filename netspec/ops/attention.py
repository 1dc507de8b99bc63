"""Attention: MultiheadAttention.

Three input ports, query, key and value, each an (L, features) sample with the batch
first; key defaults to the query and value to the key, so after one tensor it is
self-attention and ``from: [q, kv]`` is cross-attention.  torch's module returns
(attn_output, attn_weights); attn_output flows on (built as module(q, k, v)[0])."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    Draw,
    Int,
    Output,
    Port,
    Probability,
    Shape,
    ShapeError,
    Torch,
    layer,
)
from netspec.ops.recurrent import SEQUENCE, _batch_first, _features


def _dims(a: Args) -> tuple[int, int, int]:
    e = a.embed_dim
    return e, a.kdim or e, a.vdim or e


def _mha_params(a: Args, shapes: list[Shape]) -> int:
    e, kd, vd = _dims(a)
    return (2 * e * e + kd * e + vd * e           # q/k/v projections and out_proj
            + (4 * e if a.bias else 0)             # in_proj_bias (3E) and out_proj.bias
            + (2 * e if a.add_bias_kv else 0))     # bias_k, bias_v


def _mha_macs(a: Args, shapes: list[Shape], y: Shape) -> int:
    if not isinstance(shapes, list) or len(shapes) < 3:
        return 0
    e, kd, vd = _dims(a)
    length, source = shapes[0][0], shapes[1][0]
    attended = source + a.add_bias_kv + a.add_zero_attn
    # the projections of q, k, v and the output; Q·Kᵀ and the weights·V over all heads
    return (length * e * e + source * kd * e + source * vd * e + length * e * e
            + 2 * length * attended * e)


def _read_attention(m) -> dict:
    """The arguments an nn.MultiheadAttention was made with: it keeps bias and add_bias_kv
    as parameters, and kdim/vdim as embed_dim when they were not given."""
    e = m.embed_dim
    return {"embed_dim": e, "num_heads": m.num_heads, "dropout": m.dropout,
            "bias": m.in_proj_bias is not None, "add_bias_kv": m.bias_k is not None,
            "add_zero_attn": m.add_zero_attn, "kdim": None if m.kdim == e else m.kdim,
            "vdim": None if m.vdim == e else m.vdim, "batch_first": m.batch_first}


# forward(query, key, value, ...): the masks must stay None; need_weights and
# average_attn_weights change only attn_weights, which a spec does not carry on
_FORWARD_PARAMS = (("key_padding_mask", None), ("need_weights", True), ("attn_mask", None),
                   ("average_attn_weights", True), ("is_causal", False))


def _key_args(kw: dict) -> str:
    return f"d {kw.get('embed_dim', '?')}, {kw.get('num_heads', '?')} heads"


@layer("MultiheadAttention",
       Arg("embed_dim", Int(), infer=_features, noun="features"), Arg("num_heads", Int()),
       Arg("dropout", Probability, 0.0), Arg("bias", Bool, True),
       Arg("add_bias_kv", Bool, False), Arg("add_zero_attn", Bool, False),
       Arg("kdim", Int().nullable(), None), Arg("vdim", Int().nullable(), None),
       Arg("batch_first", Bool, False), family="recurrent",
       inputs=(Port("query", ranks=SEQUENCE, doc="query"),
               Port("key", ranks=SEQUENCE, doc="key", default="query"),
               Port("value", ranks=SEQUENCE, doc="value", default="key")),
       outputs=(Output("attn_output"), Output("attn_weights")), flows="attn_output",
       torch=Torch("torch.nn.MultiheadAttention", returns=("attn_output", "attn_weights"),
                   forward_params=_FORWARD_PARAMS,
                   free_params=("need_weights", "average_attn_weights")),
       params=_mha_params, macs=_mha_macs, draw=Draw(key_args=_key_args),
       read_module=_read_attention)
def multihead_attention(a: Args, shapes: list[Shape]) -> Shape:
    """torch.nn.MultiheadAttention(query, key, value)[0]: attention of the query over the
    key/value sequence; the output has the query's length and embed_dim features."""
    for i, (port, shape) in enumerate(zip(("query", "key", "value"), shapes, strict=False)):
        if len(shape) != 2:
            raise ShapeError(f"{port} ({a.describe(i)}) has to be an L×features sample "
                             "(batch excluded)")
    q, k, v = shapes
    e, kd, vd = _dims(a)
    if e % a.num_heads:
        raise ShapeError(f"embed_dim {e} is not divisible by num_heads {a.num_heads}",
                         "num_heads")
    if q[1] != e:
        raise ShapeError(f"the query ({a.describe(0)}) has {q[1]} features, but embed_dim "
                         f"is {e}", "embed_dim")
    if k[1] != kd:
        raise ShapeError(f"the key ({a.describe(1)}) has {k[1]} features, but kdim is {kd}"
                         + ("" if a.kdim else " (embed_dim; write kdim for another size)"),
                         "kdim" if a.kdim else None)
    if v[1] != vd:
        raise ShapeError(f"the value ({a.describe(2)}) has {v[1]} features, but vdim is {vd}"
                         + ("" if a.vdim else " (embed_dim; write vdim for another size)"),
                         "vdim" if a.vdim else None)
    if k[0] != v[0]:
        raise ShapeError(f"the key ({a.describe(1)}) and the value ({a.describe(2)}) have "
                         f"different lengths, {k[0]} and {v[0]}")
    if not a.batch_first and q[0] != k[0]:
        raise ShapeError(f"with batch_first false torch reads the sequence dimension as the "
                         f"batch, and the query's length {q[0]} differs from the key's "
                         f"{k[0]}; write batch_first: true", "batch_first")
    _batch_first(a)
    return (q[0], e)
