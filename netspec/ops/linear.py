"""Linear, Identity and Embedding."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    Code,
    Draw,
    Float,
    Int,
    Port,
    Shape,
    ShapeError,
    Torch,
    fmt,
    layer,
    numel,
)
from netspec.ops.text import embedding_key_args, linear_key_args


def _features(x: Shape) -> int:
    return x[-1]


@layer("Linear", Arg("in_features", Int(), infer=_features, noun="features"),
       Arg("out_features", Int()), Arg("bias", Bool, True), family="linear",
       torch=Torch("torch.nn.Linear", owns_output=True), draw=Draw(key_args=linear_key_args),
       code=Code(attribute="fc"),
       weights=lambda a: {"weight": (a.out_features, a.in_features),
                          **({"bias": (a.out_features,)} if a.bias else {})},
       params=lambda a, x: a.in_features * a.out_features + (a.out_features if a.bias else 0),
       macs=lambda a, x, y: numel(x[:-1]) * a.in_features * a.out_features)
def linear(a: Args, x: Shape) -> Shape:
    out = (*x[:-1], a.out_features)
    if len(x) >= 3 and "in_features" not in a.given:
        # PyTorch accepts it, acting on the last dimension only: the classic missing Flatten
        # after a convolution (an L×features sequence, rank 2, is the intended use; a written
        # in_features says the last dimension is meant: ConvNeXt's channels-last Linears).
        a.warn(f"Linear acts on the last dimension only: the {fmt(x)} sample becomes "
               f"{fmt(out)}, each of the {numel(x[:-1])} positions mapped separately; to map "
               f"the whole sample, put a Flatten before it (in_features would be {numel(x)}); "
               f"where the last dimension is meant, write in_features: {x[-1]}")
    return out


@layer("Identity", family="shape", min_rank=0, input_dtype="any")
def identity(a: Args, x: Shape) -> Shape:
    return x


@layer("Embedding", Arg("num_embeddings", Int()), Arg("embedding_dim", Int()),
       Arg("padding_idx", Int(minimum=None).nullable(), None),
       Arg("max_norm", Float().nullable(), None), Arg("norm_type", Float(), 2.0),
       Arg("scale_grad_by_freq", Bool, False), Arg("sparse", Bool, False),
       family="embedding", inputs=(Port(dtype="int", min_rank=0, index_bound="num_embeddings"),),
       output_dtype="float32", draw=Draw(key_args=embedding_key_args),
       weights=lambda a: {"weight": (a.num_embeddings, a.embedding_dim)},
       params=lambda a, x: a.num_embeddings * a.embedding_dim)
def embedding(a: Args, x: Shape) -> Shape:
    if a.padding_idx is not None and not -a.num_embeddings <= a.padding_idx < a.num_embeddings:
        raise ShapeError(f"padding_idx {a.padding_idx} must be within num_embeddings "
                         f"{a.num_embeddings}", "padding_idx")
    return (*x, a.embedding_dim)
