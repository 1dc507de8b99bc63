"""Expand (netspec/ops/tensor.py): x.expand(*sizes), sizes counting the batch and -1
keeping a size; its rule against torch, and every command on it."""

from __future__ import annotations

import pytest
import torch
from conftest import examples
from function_ops import (
    DTYPES,
    Calls,
    build_and_codegen_agree,
    compare,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec

SPEC = """\
netspec: 1
name: Broadcast
input: [3, 8, 8]
layers:
  - AdaptiveAvgPool2d: 1
    name: pool
  - Expand: {sizes: [-1, -1, 8, 8]}
    name: spread
"""


@st.composite
def case(draw):
    """A sample with size-1 dims and sizes: each -1, the size, or for a 1 a new size, now
    and then a wrong size, a 0, a fixed batch, one entry too few or too many."""
    sample = tuple(draw(st.lists(st.sampled_from([1, 1, 2, 3]), min_size=1, max_size=4)))
    sizes = [-1] + [draw(st.sampled_from([-1, n, 4] if n == 1 else [-1, n]))
                    for n in sample]
    how = draw(st.sampled_from(["valid", "valid", "wrong", "zero", "batch", "short", "long"]))
    i = draw(st.integers(1, len(sample)))
    if how == "wrong":
        sizes[i] = sample[i - 1] + draw(st.sampled_from([1, 2]))
    elif how == "zero":
        sizes[i] = 0
    elif how == "batch":
        sizes[0] = draw(st.sampled_from([1, 2, 3]))
    elif how == "short":
        sizes = sizes[:-1] or [-1]
    elif how == "long":
        sizes = [draw(st.sampled_from([-1, 1, 2])), *sizes]
    return sample, sizes


@settings(max_examples=examples(150))
@given(drawn=case(), dtype=st.sampled_from(DTYPES))
def test_expand_agrees_with_torch(drawn, dtype):
    sample, sizes = drawn
    (ours, our_dtype, why), (theirs, their_dtype, _) = compare(
        "Expand", {"sizes": sizes}, sample, lambda x: x.expand(*sizes), dtype)
    assert (ours, our_dtype) == (theirs, their_dtype), (drawn, why)


@pytest.mark.parametrize(("sizes", "message"), [
    ("[-1, 4, 8, 8]", "the expanded size 4 must match the existing size 3 at non-singleton "
                      "dimension 1 (input N×3×1×1)"),
    ("[-1, 8, 8]", "sizes [-1, 8, 8] has 3 entries, fewer than the 4 dimensions"),
    ("[2, -1, 8, 8]", "sizes[0] is 2, a fixed batch size"),
    ("[-1, -1, 0, 8]", "size 0 at dimension 2 leaves the output empty"),
])
def test_refusals_point_at_sizes(sizes, message):
    (error,) = netspec.check(SPEC.replace("[-1, -1, 8, 8]", sizes)).errors
    assert message in error.message and (error.line, error.col) == (7, 21), error.format()


def test_the_list_form_is_the_sizes():
    """Expand: [-1, -1, 8, 8] reads as x.expand(-1, -1, 8, 8): the sizes are varargs."""
    listed = netspec.check(SPEC.replace("Expand: {sizes: [-1, -1, 8, 8]}",
                                        "Expand: [-1, -1, 8, 8]"))
    assert listed.ok and listed.output_shape == (3, 8, 8)


def test_build_codegen_summary_render(tmp_path):
    source = build_and_codegen_agree(
        SPEC, lambda m, x: m.pool(x).expand(-1, -1, 8, 8), [torch.randn(2, 3, 8, 8)],
        tmp_path, "Broadcast")
    assert "x = x.expand(-1, -1, 8, 8)  # -> 3×8×8" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["spread"].params == 0 and "sizes (-1, -1, 8, 8)" in dot


@pytest.mark.parametrize("body", [
    lambda m, x: m.pool(x).expand(-1, -1, 8, 8),
    lambda m, x: m.pool(x).expand((x.shape[0], 3, 8, 8)),
    lambda m, x: (lambda y: y.expand(y.size(0), y.size(1), 8, 8))(m.pool(x)),
])
def test_import_round_trip(body):
    layers = import_round_trip(Calls(body, pool=nn.AdaptiveAvgPool2d(1)), (3, 8, 8),
                               torch.randn(2, 3, 8, 8))
    sizes = layers[1]["Expand"]["sizes"]
    assert sizes[0] == -1 and sizes[2:] == [8, 8], layers


def test_import_reads_sizes_another_tensor_has_at_the_same_positions():
    """pool(x).expand(x.size(0), x.size(1), 8, 8): x's batch and channels are pool(x)'s too,
    so the import reads them from the tensor it expands (the importer once refused this);
    the built model gives the reference's output at another batch too."""
    body = lambda m, x: m.pool(x).expand(x.size(0), x.size(1), 8, 8)  # noqa: E731
    layers = import_round_trip(Calls(body, pool=nn.AdaptiveAvgPool2d(1)), (3, 8, 8),
                               torch.randn(5, 3, 8, 8))
    (expand,) = [e["Expand"] for e in layers if "Expand" in e]
    sizes = expand["sizes"] if isinstance(expand, dict) else expand
    assert sizes[0] == -1 and sizes[2:] == [8, 8], layers


# ---------------------------------------------------------------- a Parameter over a batch
# from: [class_token, x]: a tensor without a batch dimension repeated over x's batch,
# class_token.expand(x.shape[0], -1, -1) (torchvision's ViT)

TOKEN_SPEC = """\
netspec: 1
name: ClassToken
input: [3, 16, 16]
layers:
  - Conv2d: {out_channels: 8, kernel_size: 4, stride: 4}
    name: conv_proj
  - Flatten: {start_dim: 2}
  - Permute: [0, 2, 1]
    name: tokens
  - Parameter: {shape: [1, 1, 8], init: normal, std: 0.02}
    name: class_token
  - Expand: [-1, -1, -1]
    from: [class_token, tokens]
    name: batch_class_token
  - Concat: {dim: 1}
    from: [batch_class_token, tokens]
"""


def token_spec(param: tuple, sample: tuple, sizes: list, dtype: str = "float32") -> str:
    return (f"netspec: 1\ninput: {{shape: {list(sample)}, dtype: {dtype}}}\nlayers:\n"
            f"  - Identity:\n    name: x\n  - Parameter: {{shape: {list(param)}}}\n"
            f"    name: p\n  - Expand: {{sizes: {sizes}}}\n    from: [p, x]\n")


@st.composite
def token_case(draw):
    """A parameter (its first size 1 mostly), a sample whose batch it takes, and sizes as
    torch aligns them: as many as the parameter's dims mostly, now and then new leading
    dims or too few; each -1, the size, a new size for a 1, now and then a wrong one or 0."""
    param = tuple(draw(st.lists(st.sampled_from([1, 1, 1, 2, 3]), min_size=1, max_size=4)))
    sample = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    rank = max(1, len(param) + draw(st.sampled_from([0, 0, 0, 1, 2, -1])))
    full = (1,) * (rank - len(param)) + param if rank >= len(param) else param
    sizes = [-1] + [draw(st.sampled_from([-1, n, 4] if n == 1 else [-1, n, n + 1]))
                    for n in full[1:rank]]
    if draw(st.integers(0, 5)) == 0 and len(sizes) > 1:
        sizes[draw(st.integers(1, len(sizes) - 1))] = 0
    return param, sample, sizes


@settings(max_examples=examples(150))
@given(drawn=token_case(), dtype=st.sampled_from(DTYPES))
def test_a_parameter_over_another_batch_agrees_with_torch(drawn, dtype):
    """netspec accepts exactly when p.expand(x.shape[0], *sizes[1:]) gives every batch its
    own copy (batches 2 and 3, a non-empty output), with torch's shape and dtype."""
    param, sample, sizes = drawn
    theirs = []
    for n in (2, 3):
        x, p = torch.zeros((n, *sample), dtype=getattr(torch, dtype)), torch.zeros(param)
        try:
            y = p.expand(x.shape[0], *sizes[1:])
        except RuntimeError:
            theirs.append(None)
            continue
        theirs.append((tuple(y.shape[1:]), str(y.dtype).removeprefix("torch."))
                      if y.shape[0] == n and y.numel() else None)
    result = netspec.check(token_spec(param, sample, sizes, dtype))
    if None in theirs or theirs[0] != theirs[1]:
        assert not result.ok, (drawn, theirs)
    else:
        assert result.ok, (drawn, [d.message for d in result.errors])
        ours = (result.output_shape, result.layers[-1].output_dtype)
        assert ours == theirs[0], drawn


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace("from: [class_token, tokens]", "from: class_token"),
     "Expand takes a batch of samples, but 'class_token' has no batch dimension (a "
     "Parameter, 1×1×8); give the tensor whose batch to take: from: [class_token, x]"),
    (lambda s: s.replace("shape: [1, 1, 8]", "shape: [2, 1, 8]"),
     "'class_token' (2×1×8) meets the batch dimension with size 2, and only a size of 1 is "
     "repeated over a batch; give it a leading 1: 1×2×1×8"),
    (lambda s: s.replace("Expand: [-1, -1, -1]", "Expand: [-1, -1]"),
     "sizes [-1, -1] has 2 entries, fewer than the 3 dimensions of the input"),
])
def test_refusals_of_a_parameter_say_why(edit, message):
    text = edit(TOKEN_SPEC)
    assert text != TOKEN_SPEC
    errors = netspec.check(text).errors
    assert any(message in d.message for d in errors), [d.message for d in errors]


def test_a_parameter_over_a_batch_builds_and_writes_code_at_any_batch(tmp_path):
    """The built model and the generated code read the batch when they run: the same
    outputs as torchvision's spelling at batches 1, 2 and 5."""
    def reference(m, x):
        tokens = getattr(m, "1")(m.conv_proj(x)).permute(0, 2, 1)
        return torch.cat([m.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

    source = build_and_codegen_agree(TOKEN_SPEC, reference,
                                     [torch.randn(n, 3, 16, 16) for n in (1, 2, 5)],
                                     tmp_path, "ClassToken")
    assert "self.class_token.expand(tokens.shape[0], -1, -1)  # -> 1×8" in source
    rows, dot = summary_and_render(TOKEN_SPEC)
    assert rows["batch_class_token"].params == 0 and rows["class_token"].params == 8
    assert "sizes (-1, -1, -1)" in dot
    # the tokens give only their batch size: a dashed edge saying so, not a data edge
    (edge,) = [line for line in dot.splitlines() if "batch size of 16×8" in line]
    assert "style=dashed" in edge, edge


class ClassTokenModel(nn.Module):
    """torchvision's VisionTransformer.forward, and timm's spelling of the same."""

    def __init__(self, timm_spelling: bool = False):
        super().__init__()
        self.conv_proj = nn.Conv2d(3, 8, 4, stride=4)
        self.class_token = nn.Parameter(torch.randn(1, 1, 8))
        self.timm_spelling = timm_spelling

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).permute(0, 2, 1)
        if self.timm_spelling:
            return torch.cat((self.class_token.expand(x.shape[0], -1, -1), x), dim=1)
        n = x.shape[0]
        batch_class_token = self.class_token.expand(n, -1, -1)
        return torch.cat([batch_class_token, x], dim=1)


@pytest.mark.parametrize("timm_spelling", [False, True])
def test_import_of_a_class_token_round_trips(timm_spelling):
    layers = import_round_trip(ClassTokenModel(timm_spelling), (3, 16, 16),
                               torch.randn(3, 3, 16, 16))
    (expand,) = [e for e in layers if "Expand" in e]
    assert expand["Expand"] == {"sizes": [-1, -1, -1]}, layers
    assert expand["from"][0] == "class_token", layers
