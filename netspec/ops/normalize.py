"""Normalize: torch.nn.functional.normalize(x, p, dim, eps), x divided by its p-norm over
dim (at least eps): timm's EdgeNeXt and XCiT cross-covariance attention normalise queries
and keys so.  dim counts the batch as torch code does; normalising over the batch would
mix the samples and is refused."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Code,
    Dim,
    Draw,
    Float,
    FxCall,
    Port,
    Shape,
    ShapeError,
    Torch,
    batched_dim,
    layer,
)


def _key_args(kw: dict) -> str:
    p = kw.get("p", 2.0)
    return f"p {p:g}, dim {kw.get('dim', 1)}"


@layer("Normalize", Arg("p", Float(), 2.0), Arg("dim", Dim, 1),
       Arg("eps", Float(minimum=0), 1e-12), family="norm",
       inputs=(Port(min_rank=0),),
       torch=Torch("torch.nn.functional.normalize", module=False,
                   keywords=("p", "dim", "eps")),
       code=Code(call="nn.functional.normalize"), draw=Draw(key_args=_key_args, abbrev="L2"),
       fx=(FxCall("normalize", (("p", 2.0), ("dim", 1), ("eps", 1e-12), ("out", None))),))
def normalize(a: Args, x: Shape) -> Shape:
    """F.normalize(x, p, dim, eps): x / max(‖x‖_p over dim, eps), the shape kept."""
    if batched_dim(a.dim, len(x)) == -1:
        raise ShapeError(f"dim {a.dim} is the batch dimension: normalising over it mixes the "
                         "samples (the batch size is not part of the spec); use dim 1 or "
                         "later", "dim")
    return x
