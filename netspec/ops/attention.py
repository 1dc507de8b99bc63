"""Attention: MultiheadAttention, ScaledDotProductAttention.

Three input ports, query, key and value, each an (L, features) sample with the batch
first; key defaults to the query and value to the key, so after one tensor it is
self-attention and ``from: [q, kv]`` is cross-attention.  torch's module returns
(attn_output, attn_weights); attn_output flows on (built as module(q, k, v)[0])."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    Code,
    Draw,
    Float,
    FxCall,
    Int,
    Output,
    Port,
    Probability,
    Shape,
    ShapeError,
    Torch,
    fmt,
    layer,
    numel,
    torch_side_source,
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
                   free_params=("need_weights", "average_attn_weights"),
                   call_with=(("need_weights", False),)),
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


# ---------------------------------------------------------------- scaled_dot_product_attention

_QKV = ("query", "key", "value", "attn_mask")


def _broadcast_dims(shapes: list[Shape], what: str) -> tuple[int, ...]:
    """The dims of same-length shapes broadcast together (each equal, or 1); ``what`` names
    them in the error."""
    out = []
    for k, dims in enumerate(zip(*shapes, strict=True)):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ShapeError(f"{what} do not broadcast: dim {k + 1} (batch included) has sizes "
                             f"{', '.join(map(str, dims))} (equal, or 1 where they differ)")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _heads(a: Args, q: Shape, k: Shape, v: Shape) -> tuple[Shape, Shape]:
    """enable_gqa: key and value heads (dim -3) that divide the query's are repeated to
    it, as torch does; the dims before broadcast as given."""
    if not a.enable_gqa or len(q) < 3 or (q[-3] == k[-3] and q[-3] == v[-3]):
        return k, v
    for i, shape in ((1, k), (2, v)):
        if q[-3] % shape[-3]:
            raise ShapeError(f"enable_gqa: the {_QKV[i]}'s {shape[-3]} heads ({a.describe(i)}) "
                             f"do not divide the query's {q[-3]}", "enable_gqa")
    return (*k[:-3], q[-3], *k[-2:]), (*v[:-3], q[-3], *v[-2:])


def _sdpa_dtype(a: Args, dtypes: list[str]) -> str:
    """query, key and value of one float dtype; a float mask is float32 or the query's."""
    q = dtypes[0]
    if len(set(dtypes[:3])) > 1:
        raise ShapeError(f"query, key and value must have one dtype, got {', '.join(dtypes[:3])}")
    if q in ("int32", "int64"):
        raise ShapeError(f"needs floating-point query, key and value, but gets {q}")
    if len(dtypes) > 3 and dtypes[3] not in ("float32", q):
        raise ShapeError(f"attn_mask is {dtypes[3]}; torch takes a float32 mask or one of the "
                         f"query's dtype ({q})")
    return q


def _sdpa_macs(a: Args, shapes: list[Shape], y: Shape) -> int:
    """Q·Kᵀ and the weights·V for every query position of every head (the math kernel's two
    batched matmuls, as FlopCounterMode counts them, halved; torch's fused CPU kernel is
    not counted by FlopCounterMode at all)."""
    if not isinstance(shapes, list) or len(shapes) < 3 or y is None:
        return 0
    q, k = shapes[0], shapes[1]
    return numel(y[:-1]) * k[-2] * (q[-1] + y[-1])


def _sdpa_key_args(kw: dict) -> str:
    parts = [name for name in ("is_causal", "enable_gqa") if kw.get(name)]
    if kw.get("scale") is not None:
        parts.append(f"scale {kw['scale']:g}")
    return ", ".join(parts)


@layer("ScaledDotProductAttention", Arg("dropout_p", Probability, 0.0),
       Arg("is_causal", Bool, False), Arg("scale", Float().nullable(), None, keyword_only=True),
       Arg("enable_gqa", Bool, False, keyword_only=True), family="recurrent",
       inputs=(Port("query", doc="query", min_rank=0), Port("key", doc="key", min_rank=0),
               Port("value", doc="value", min_rank=0),
               Port("attn_mask", dtype="any", min_rank=0, optional=True, doc="attn_mask")),
       # broadcasts: an attn_mask without a batch dimension (a relative position bias,
       # 1×heads×L×S) meets the batch as torch broadcasts it
       torch=Torch("torch.nn.functional.scaled_dot_product_attention", module=False,
                   keywords=("dropout_p", "is_causal", "scale", "enable_gqa"),
                   broadcasts=True),
       code=Code(call="nn.functional.scaled_dot_product_attention"), dtype=_sdpa_dtype,
       macs=_sdpa_macs, draw=Draw(key_args=_sdpa_key_args),
       fx=(FxCall("scaled_dot_product_attention",
                  (("dropout_p", 0.0), ("is_causal", False), ("scale", None),
                   ("enable_gqa", False))),))
def scaled_dot_product_attention(a: Args, shapes: list[Shape]) -> Shape:
    """F.scaled_dot_product_attention(query, key, value, attn_mask): query …×L×E over key
    …×S×E and value …×S×Ev gives …×L×Ev; the dims before broadcast (heads, with
    enable_gqa key/value heads that divide the query's)."""
    for i, shape in enumerate(shapes[:3]):
        if len(shape) < 2:
            raise ShapeError(f"the {_QKV[i]} ({a.describe(i)}) has to be a sample of at least "
                             "2 dims (…×L×E, batch excluded); with its batch a 1-d sample is "
                             "a matrix, which torch would attend across the batch")
    if len({len(s) for s in shapes}) > 1:
        ranks = ", ".join(f"{_QKV[i]} {len(s)}" for i, s in enumerate(shapes))
        raise ShapeError(f"query, key, value and attn_mask need samples of one rank, got "
                         f"{ranks} dims; torch would broadcast a batch against a sample dim")
    q, k, v = shapes[:3]
    if q[-1] != k[-1]:
        raise ShapeError(f"the query ({a.describe(0)}) and the key ({a.describe(1)}) have "
                         f"different embedding sizes, {q[-1]} and {k[-1]}")
    if k[-2] != v[-2]:
        raise ShapeError(f"the key ({a.describe(1)}) and the value ({a.describe(2)}) have "
                         f"different lengths, {k[-2]} and {v[-2]}")
    k, v = _heads(a, q, k, v)
    lead = _broadcast_dims([q[:-2], k[:-2], v[:-2]], f"the query ({a.describe(0)}), key "
                           f"({a.describe(1)}) and value ({a.describe(2)})")
    weights = (*lead, q[-2], k[-2])  # one L×S matrix per head
    if len(shapes) > 3:
        if a.is_causal:
            raise ShapeError("is_causal and attn_mask together: torch takes one or the other",
                             "is_causal")
        weights = _broadcast_dims([shapes[3], weights], f"the attn_mask ({a.describe(3)}) and "
                                  f"the attention weights ({fmt(weights)}: …×L×S)")
    if a.dropout_p:
        a.warn(f"dropout_p {a.dropout_p} is applied in eval too (the function has no "
               "training flag; write 0 for inference)", "dropout_p")
    return (*weights[:-1], v[-1])


# ---------------------------------------------------------------- rotary position embedding



@layer("RotaryEmbedding", Arg("theta", Float(), 10000.0), family="recurrent", min_rank=3,
       torch=Torch("netspec.ops.torch_side.rotary_embedding", module=False,
                   keywords=("theta",)),
       code=Code(call="rotary_embedding", helper=torch_side_source(
           "rotary_embedding", "rotary_angles", "kept_rotary_angles")),
       draw=Draw(abbrev="RoPE", key_args=lambda kw: f"θ {kw.get('theta', 10000.0):g}"),
       # a built model's call, which the importer reads back
       fx=(FxCall("rotary_embedding", (("theta", 10000.0),), module="netspec.ops.torch_side"),))
def rotary_embedding(a: Args, x: Shape) -> Shape:
    """Rotary position embedding of queries or keys, …×heads×L×head_dim (transformers'
    apply_rotary_pos_emb with Llama's frequencies, rope_theta ``theta``): positions 0…L-1
    along dim -2, L read from the input when it runs; the shape is kept."""
    if x[-1] % 2:
        raise ShapeError(f"head_dim {x[-1]} (the last dim of {fmt(x)}) is odd: the rotation "
                         "turns pairs of features, i and i + head_dim / 2")
    return x
