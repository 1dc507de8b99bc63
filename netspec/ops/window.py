"""Window partitions of a feature map (MaxViT's block and grid attention, torchvision's
WindowPartition / WindowDepartition): a C×H×W map cut into p×p windows of tokens, and the
windows put back.

Declared as a pair rather than spelled as Reshape + Permute + Reshape: cutting H and W
into H/p × p and W/p × p needs two sizes computed from the tensor, which a Reshape (one
-1) cannot read, and the pair reads as the paper and torchvision write it.  In a built
model they are plain functions (no modules, no state_dict keys); generated files define
them once, with the source netspec.ops.torch_side runs."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Code,
    Draw,
    Int,
    Port,
    Shape,
    ShapeError,
    Torch,
    fmt,
    layer,
)

# as generated files define them; netspec.ops.torch_side holds the same source
# (tests/ops/test_op_window.py holds them equal)
WINDOW_PARTITION = '''def window_partition(x: torch.Tensor, p: int) -> torch.Tensor:
    """B×C×H×W -> B×(H/p·W/p)×(p·p)×C: non-overlapping p×p windows of C-vectors."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), p * p, C)'''

WINDOW_DEPARTITION = '''def window_departition(
    x: torch.Tensor, p: int, h_partitions: int, w_partitions: int
) -> torch.Tensor:
    """B×(h·w)×(p·p)×C -> B×C×(h·p)×(w·p): the windows put back on the map."""
    B, _, _, C = x.shape
    x = x.reshape(B, h_partitions, w_partitions, p, p, C)
    x = x.permute(0, 5, 1, 3, 2, 4)
    return x.reshape(B, C, h_partitions * p, w_partitions * p)'''


@layer("WindowPartition", Arg("p", Int()), family="shape",
       inputs=(Port(dtype="any", ranks={3: "C×H×W"}),),
       torch=Torch("netspec.ops.torch_side.window_partition", module=False, call_args=("p",)),
       code=Code(call="window_partition", helper=WINDOW_PARTITION),
       draw=Draw(key_args=lambda kw: f"p {kw.get('p', '?')}"), origin="partitioned")
def window_partition(a: Args, x: Shape) -> Shape:
    """torchvision's WindowPartition()(x, p): a C×H×W map as (H/p·W/p) windows of p·p
    C-vectors; H and W must be multiples of p (torch's reshape refuses them otherwise)."""
    c, h, w = x
    for what, n in (("height", h), ("width", w)):
        if n % a.p:
            raise ShapeError(f"the map's {what} {n} (input {fmt(x)}) is not a multiple of p "
                             f"{a.p}: it cannot be cut into {a.p}×{a.p} windows", "p")
    return ((h // a.p) * (w // a.p), a.p * a.p, c)


@layer("WindowDepartition", Arg("p", Int()), Arg("h_partitions", Int()),
       Arg("w_partitions", Int()), family="shape",
       inputs=(Port(dtype="any", ranks={3: "windows×tokens×C"}),),
       torch=Torch("netspec.ops.torch_side.window_departition", module=False,
                   call_args=("p", "h_partitions", "w_partitions")),
       code=Code(call="window_departition", helper=WINDOW_DEPARTITION),
       draw=Draw(key_args=lambda kw: f"p {kw.get('p', '?')}, {kw.get('h_partitions', '?')}×"
                                     f"{kw.get('w_partitions', '?')} windows"),
       origin="departitioned")
def window_departition(a: Args, x: Shape) -> Shape:
    """torchvision's WindowDepartition()(x, p, h_partitions, w_partitions): windows of
    p·p C-vectors back on a C×(h_partitions·p)×(w_partitions·p) map.  As torch's reshape,
    it needs only the element counts to agree; the counts of windows and tokens are fixed
    when the network is made, as torchvision fixes them from its grid size."""
    g, pp, c = x
    want = a.h_partitions * a.w_partitions * a.p * a.p
    if g * pp != want:
        raise ShapeError(f"{g} windows of {pp} tokens (input {fmt(x)}) are {g * pp} tokens, "
                         f"and {a.h_partitions}×{a.w_partitions} windows of {a.p}×{a.p} are "
                         f"{want}", "h_partitions")
    return (c, a.h_partitions * a.p, a.w_partitions * a.p)
