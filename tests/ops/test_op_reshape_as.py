"""ReshapeAs (netspec/ops/tensor.py): x.reshape_as(other), other's shape read when the
model runs; its rule against torch, and every command on it."""

from __future__ import annotations

import pytest
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

# tokens back on the grid they came from, as PVT v2's attention output (B, H*W, C) meets
# its input (B, H, W, C): the grid's sizes are read from it at any image size
SPEC = """\
netspec: 1
name: Regrid
input: [4, 6, 8]
layers:
  - Permute: [0, 2, 3, 1]
    name: grid
  - Flatten: {start_dim: 1, end_dim: 2}
    name: tokens
  - Linear: {out_features: 4}
    name: proj
  - ReshapeAs:
    from: [proj, grid]
    name: regrid
"""


def two_inputs(x: tuple, y: tuple, x_dtype: str, y_dtype: str) -> str:
    return (f"netspec: 1\ninputs:\n  x: {{shape: {list(x)}, dtype: {x_dtype}}}\n"
            f"  y: {{shape: {list(y)}, dtype: {y_dtype}}}\nlayers:\n"
            "  - ReshapeAs:\n    from: [x, y]\n")


@st.composite
def case(draw):
    """Two samples of 1 to 4 dims: mostly other holds as many elements (its sizes a
    factorisation of x's count), now and then one more or fewer."""
    x = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    count = 1
    for n in x:
        count *= n
    sizes, rest = [], count
    for _ in range(draw(st.integers(0, 3))):
        d = draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0]))
        sizes.append(d)
        rest //= d
    y = [*sizes, rest]
    if draw(st.integers(0, 3)) == 0:
        i = draw(st.integers(0, len(y) - 1))
        y[i] = max(1, y[i] + draw(st.sampled_from([-1, 1, 2])))
    return x, tuple(draw(st.permutations(y)))


@settings(max_examples=examples(150))
@given(drawn=case(), x_dtype=st.sampled_from(DTYPES), y_dtype=st.sampled_from(DTYPES))
def test_reshape_as_agrees_with_torch(drawn, x_dtype, y_dtype):
    """netspec accepts exactly when torch reshapes at batches 2 and 3 (a non-empty result
    with the batch first), giving other's shape and x's dtype as torch does."""
    x, y = drawn
    theirs = set()
    for n in BATCHES:
        a = torch.zeros((n, *x), dtype=getattr(torch, x_dtype))
        b = torch.zeros((n, *y), dtype=getattr(torch, y_dtype))
        try:
            out = a.reshape_as(b)
        except RuntimeError:
            theirs.add(None)
            continue
        theirs.add((tuple(out.shape[1:]), str(out.dtype).removeprefix("torch."))
                   if out.shape[0] == n else None)
    result = netspec.check(two_inputs(x, y, x_dtype, y_dtype))
    (verdict,) = theirs if len(theirs) == 1 else (None,)
    if verdict is None:
        assert not result.ok, (drawn, theirs)
    else:
        assert result.ok, (drawn, [d.message for d in result.errors])
        assert (result.output_shape, result.layers[-1].output_dtype) == verdict, drawn


def test_a_count_that_differs_is_refused_with_both_numbers():
    text = SPEC.replace("out_features: 4", "out_features: 5")
    (error,) = netspec.check(text).errors
    assert ("cannot reshape 48×5 from 'proj' as 6×8×4 from 'grid': a sample holds 240 "
            "elements, and 6×8×4 holds 192") in error.message, error.format()
    assert (error.line, error.col) == (11, 5), error.format()  # at from:


def test_a_parameter_has_no_shape_to_read_per_sample():
    """other without a batch (a Parameter) is refused: its shape would swallow the batch."""
    text = SPEC.replace("from: [proj, grid]", "from: [proj, table]").replace(
        "  - ReshapeAs:", "  - Parameter: {shape: [6, 8, 4]}\n    name: table\n  - ReshapeAs:")
    result = netspec.check(text)
    assert not result.ok
    assert any("'table'" in d.message and "batch" in d.message for d in result.errors), \
        [d.message for d in result.errors]


def test_build_and_generated_code_read_the_grid_at_any_size(tmp_path):
    """The same outputs as the torch spelling at 6×8 (the declared input), 10×4 and 3×3."""
    def reference(m, x):
        grid = x.permute(0, 2, 3, 1)
        return m.proj(grid.flatten(1, 2)).reshape_as(grid)

    source = build_and_codegen_agree(
        SPEC, reference, [torch.randn(2, 4, 6, 8), torch.randn(1, 4, 10, 4),
                          torch.randn(3, 4, 3, 3)], tmp_path, "Regrid")
    assert "out = out.reshape_as(grid)  # -> 6×8×4" in source, source
    rows, dot = summary_and_render(SPEC)
    assert rows["regrid"].params == 0 and rows["regrid"].macs == 0
    assert "ReshapeAs" in dot


class Regrid(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        grid = x.permute(0, 2, 3, 1)
        return self.proj(grid.flatten(1, 2)).reshape_as(grid)


@pytest.mark.parametrize("model", [
    Regrid(),
    Calls(lambda m, x: m.proj(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape_as(x),
          proj=nn.Linear(4, 4)),
])
def test_import_round_trip(model):
    layers = import_round_trip(model, (4, 6, 8), torch.randn(2, 4, 6, 8))
    (entry,) = [e for e in layers if "ReshapeAs" in e]
    assert entry["ReshapeAs"] is None and len(entry["from"]) == 2, layers


def test_torchscript_export_reads_the_grid(tmp_path):
    """Scripted and verified at two batches (ONNX: the PVT v2 zoo spec's export test)."""
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "regrid.ts")
    assert report.ok and len(report.differences) == 2, report
