"""UnflattenAs (netspec/ops/reshape.py): x.unflatten(dim, like.shape[start_dim:end_dim + 1]),
like's sizes read when the model runs; its rule against torch, every command on it, and the
import of reshapes to sizes read from another tensor (timm's PVT v2 puts its tokens back on
the H×W grid with the sizes of the map they came from)."""

from __future__ import annotations

import inspect

import torch
from conftest import examples
from function_ops import (
    BATCHES,
    DTYPES,
    Calls,
    build_and_codegen_agree,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec
from netspec.ops import REGISTRY, torch_side

# tokens of a C×H×W map back on its grid after a Linear, the sizes read from the map
SPEC = """\
netspec: 1
name: Regrid
input: [4, 6, 8]
layers:
  - Permute: [0, 2, 3, 1]
    name: grid
  - Flatten: {start_dim: 1, end_dim: 2}
    name: tokens
  - Linear: {out_features: 5}
    name: proj
  - Transpose: [1, 2]
    name: channels
  - UnflattenAs: {dim: 2, start_dim: 1, end_dim: 2}
    from: [channels, grid]
    name: regrid
"""


def two_inputs(x: tuple, y: tuple, x_dtype: str, y_dtype: str, args: dict) -> str:
    return (f"netspec: 1\ninputs:\n  x: {{shape: {list(x)}, dtype: {x_dtype}}}\n"
            f"  y: {{shape: {list(y)}, dtype: {y_dtype}}}\nlayers:\n"
            f"  - UnflattenAs: {args}\n    from: [x, y]\n")


@st.composite
def case(draw):
    """x of 1 to 3 sample dims, like of 1 to 4 whose dims start..end mostly multiply to the
    size of x's dim (now and then not); the dims in range of either sign, now and then one
    out of range, the batch or in the wrong order."""
    x = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(1, 3)))]
    like = [draw(st.integers(1, 5)) for _ in range(draw(st.integers(1, 4)))]
    start = draw(st.integers(1, len(like)))
    end = draw(st.integers(start, len(like)))
    dim = draw(st.integers(1, len(x)))
    if draw(st.integers(0, 3)):
        size = 1
        for n in like[start - 1:end]:
            size *= n
        x[dim - 1] = size
    # negative forms, and now and then a dim torch refuses
    dim = draw(st.sampled_from([dim, dim - len(x) - 1, 0, len(x) + 1]))
    start = draw(st.sampled_from([start, start - len(like) - 1, 0, len(like) + 1]))
    end = draw(st.sampled_from([end, end - len(like) - 1, start - 1]))
    return tuple(x), tuple(like), {"dim": dim, "start_dim": start, "end_dim": end}


def torch_unflatten_as(a: torch.Tensor, b: torch.Tensor, args: dict) -> torch.Tensor:
    """The torch spelling the importer reads: x.reshape with like's sizes written out."""
    rank = b.dim()
    start, end = args["start_dim"], args["end_dim"]
    if not (-rank <= start < rank and -rank <= end < rank):
        raise IndexError("like's dim out of range")
    sizes = [b.shape[d] for d in range(start % rank, end % rank + 1)]
    if not sizes:
        raise RuntimeError("no sizes")
    dim = args["dim"] % a.dim() if -a.dim() <= args["dim"] < a.dim() else None
    if dim is None:
        raise IndexError("dim out of range")
    return a.reshape(*a.shape[:dim], *sizes, *a.shape[dim + 1:])


@settings(max_examples=examples(200))
@given(drawn=case(), x_dtype=st.sampled_from(DTYPES), y_dtype=st.sampled_from(DTYPES))
def test_unflatten_as_agrees_with_torch(drawn, x_dtype, y_dtype):
    """netspec accepts exactly when torch unflattens at batches 2 and 3 with the batch
    first and whole (like's batch not among the sizes taken), giving torch's shape and x's
    dtype."""
    x, y, args = drawn
    theirs = set()
    for n in BATCHES:
        a = torch.zeros((n, *x), dtype=getattr(torch, x_dtype))
        b = torch.zeros((n, *y), dtype=getattr(torch, y_dtype))
        try:
            out = torch_side.unflatten_as(a, b, **args)
            torch_unflatten_as(a, b, args)  # the spelling the importer reads says the same
        except (RuntimeError, IndexError):
            theirs.add(None)
            continue
        theirs.add((tuple(out.shape[1:]), str(out.dtype).removeprefix("torch."))
                   if out.shape[0] == n else None)
    result = netspec.check(two_inputs(x, y, x_dtype, y_dtype, args))
    (verdict,) = theirs if len(theirs) == 1 else (None,)
    if verdict is None:
        assert not result.ok, (drawn, theirs)
    else:
        assert result.ok, (drawn, [d.message for d in result.errors])
        assert (result.output_shape, result.layers[-1].output_dtype) == verdict, drawn


def test_sizes_that_do_not_hold_the_dim_are_refused_with_the_numbers():
    text = SPEC.replace("end_dim: 2}\n    from: [channels", "end_dim: 1}\n    from: [channels")
    (error,) = netspec.check(text).errors
    assert ("cannot unflatten dim 2 of 5×48 from 'channels' (size 48) into 6, the sizes of "
            "6×8×4 from 'grid' at dims 1..1: they hold 6 elements") in error.message, \
        error.format()


def test_the_batch_is_neither_split_nor_taken():
    batch = netspec.check(SPEC.replace("{dim: 2, start_dim: 1", "{dim: 0, start_dim: 1"))
    assert not batch.ok and "batch" in batch.errors[0].message, batch.errors[0].format()
    like = netspec.check(SPEC.replace("{dim: 2, start_dim: 1", "{dim: 2, start_dim: 0"))
    assert not like.ok and "start_dim 0 is the batch dimension" in like.errors[0].message, \
        like.errors[0].format()


def test_generated_files_define_what_build_runs():
    assert inspect.getsource(torch_side.unflatten_as).rstrip() == \
        REGISTRY["UnflattenAs"].code.helper


def test_build_and_generated_code_read_the_grid_at_any_size(tmp_path):
    """The same outputs as the torch spelling at 6×8 (the declared input), 10×4 and 3×3."""
    def reference(m, x):
        grid = x.permute(0, 2, 3, 1)
        b, h, w, _ = grid.shape
        out = m.proj(grid.flatten(1, 2)).transpose(1, 2)
        return out.reshape(b, out.shape[1], h, w)

    source = build_and_codegen_agree(
        SPEC, reference, [torch.randn(2, 4, 6, 8), torch.randn(1, 4, 10, 4),
                          torch.randn(3, 4, 3, 3)], tmp_path, "Regrid")
    assert "out = unflatten_as(out, grid, 2, 1, 2)  # -> 5×6×8" in source, source
    rows, dot = summary_and_render(SPEC)
    assert rows["regrid"].params == 0 and rows["regrid"].macs == 0
    assert "UnflattenAs" in dot


def test_torchscript_export_reads_the_grid(tmp_path):
    """Scripted and verified at two batches."""
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "regrid.ts")
    assert report.ok and len(report.differences) == 2, report


class Stage(nn.Module):
    """PVT v2's shape of it: the map's sizes read once, its tokens reshaped back with them
    after a Linear (x.reshape(B, H, W, -1))."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 5)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        x = self.proj(x.reshape(B, -1, C))
        return x.reshape(B, H, W, -1).permute(0, 3, 1, 2)


def test_import_of_a_reshape_to_sizes_read_from_another_tensor():
    """Two sizes read from the map, which one -1 cannot say: the importer writes the split
    as UnflattenAs from the map, and the spec runs at other sizes as the module does."""
    model = Stage().eval()
    layers = import_round_trip(model, (4, 6, 8), torch.randn(2, 4, 6, 8))
    (entry,) = [e for e in layers if "UnflattenAs" in e]
    assert entry["UnflattenAs"] == {"dim": 1, "start_dim": 1, "end_dim": 2}, layers
    assert entry["from"][1] == "permute", layers
    from netspec.importer.fx import dumps, model_to_spec

    built = netspec.build(dumps(model_to_spec(model, (4, 6, 8)).data)).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    for x in (torch.randn(1, 4, 10, 3), torch.randn(3, 4, 5, 7)):
        with torch.no_grad():
            assert torch.equal(built(x), model(x)), x.shape


def test_import_of_a_view_on_the_grid_of_the_input():
    """x.transpose(1, 2).view(B, C, H, W) of tokens whose H, W are the input's."""
    model = Calls(lambda m, x: m.proj(x.flatten(2).transpose(1, 2)).transpose(1, 2).view(
        x.shape[0], 4, x.shape[2], x.shape[3]), proj=nn.Linear(4, 4))
    layers = import_round_trip(model, (4, 6, 8), torch.randn(2, 4, 6, 8))
    assert any("UnflattenAs" in e and e["from"][1] == "input" for e in layers), layers
