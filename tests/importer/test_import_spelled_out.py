"""Functions that are compositions of ones netspec spells are imported as them:
torch.addcmul(a, b, c, value=v) is a + b * c (* v), as resmlp's Affine writes
``torch.addcmul(self.beta, self.alpha, x)``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.pipeline.imported import verify


class Affine(nn.Module):
    def __init__(self, dim, how):
        super().__init__()
        self.alpha = nn.Parameter(torch.randn(1, 1, dim))
        self.beta = nn.Parameter(torch.randn(1, 1, dim))
        self.how = how

    def forward(self, x):
        return self.how(self.beta, self.alpha, x)


@pytest.mark.parametrize("how, multiplies", [
    (torch.addcmul, 1),
    (lambda a, b, c: torch.addcmul(a, b, c, value=0.5), 2),
    (lambda a, b, c: a.addcmul(b, c), 1),
    (lambda a, b, c: a.addcmul(c, tensor2=b, value=-2.0), 2),
])
def test_addcmul_is_add_and_mul(how, multiplies):
    model = nn.Sequential(nn.Linear(6, 6), Affine(6, how)).eval()
    imported = model_to_spec(model, (5, 6))
    text = dumps(imported.data)
    assert verify(imported, text).ok
    assert text.count("- Mul") == multiplies and text.count("- Add") == 1, text
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 5, 6)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)


class QKV(nn.Module):
    """timm's Attention: qkv.reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4).unbind(0)."""

    def __init__(self, how, dim=8, heads=2):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.how, self.heads, self.head_dim = how, heads, dim // heads

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim)
        q, k, v = self.how(qkv)
        x = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


def _round_trip(model, shape, x):
    imported = model_to_spec(model.eval(), shape)
    text = dumps(imported.data)
    assert verify(imported, text).ok
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)
    return text


@pytest.mark.parametrize("how, permutes", [
    (lambda t: t.permute(2, 0, 3, 1, 4).unbind(0), 3),
    (lambda t: torch.unbind(torch.permute(t, (2, 0, 3, 1, 4)), dim=0), 3),
    # timm's cait: q, k, v = qkv[0], qkv[1], qkv[2] of the permuted tensor
    (lambda t: (lambda p: (p[0], p[1], p[2]))(t.permute(2, 0, 3, 1, 4)), 3),
    (lambda t: (lambda p: (p[0], p[1], p[-1]))(t.permute(2, 0, 3, 1, 4)), 3),
])
def test_unbind_parts_are_selects(how, permutes):
    text = _round_trip(QKV(how), (5, 8), torch.randn(3, 5, 8))
    assert text.count("- Select") == 3 and "unbind" not in text, text
    assert text.count("- Permute") == permutes, text


def test_unbinding_the_batch_is_refused_by_name():
    """x.unbind(0) (or a permute bringing the batch first) takes samples apart: its selects
    of dim 0 are refused when the spec is checked, naming the batch."""
    for how in (lambda x: x.unbind(0), lambda x: x.permute(0, 2, 1).unbind(0)):
        imported = model_to_spec(Unbound(how).eval(), (3, 3))
        with pytest.raises(ImportProblem, match="dim 0 is the batch dimension"):
            verify(imported, dumps(imported.data))


class Unbound(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how

    def forward(self, x):
        a, b, c = self.how(x)
        return a + b * c


@pytest.mark.parametrize("how, shape", [
    (lambda x: x.unbind(1), (3, 4)), (lambda x: x.unbind(2), (4, 3)),
    (lambda x: torch.unbind(x, -1), (4, 3)),
    # a permute keeping the order of the rest: nothing to permute after the select
    (lambda x: x.permute(1, 0, 2).unbind(0), (3, 4)),
])
def test_unbind_without_permute(how, shape):
    text = _round_trip(Unbound(how), shape, torch.randn(2, *shape))
    assert text.count("- Select") == 3 and "Permute" not in text, text


class TokensFromInput(nn.Module):
    """A reshape whose sizes are read from the block's input, not from the tensor it
    reshapes: N (dim 1) is the same there, C (dim 2) is not."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.fc = nn.Linear(dim, 2 * dim)
        self.heads = heads

    def forward(self, x):
        B, N, C = x.shape
        y = self.fc(x).reshape(B, N, 2, self.heads, C // self.heads)  # N, computed: 0, -1
        return y.reshape(B, N, -1)


def test_a_size_read_from_another_tensor_where_the_two_agree_is_read_at_run_time():
    text = _round_trip(TokensFromInput(), (5, 8), torch.randn(3, 5, 8))
    assert "shape: [0, 0, 2, 2, -1]" in text and "shape: [0, 0, -1]" in text, text
    # N read at run time: the built model takes another number of tokens
    built = netspec.build(text).eval()
    built.load_state_dict(TokensFromInput().state_dict())
    assert built(torch.randn(2, 7, 8)).shape == (2, 7, 16)


class SizesThatDiffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 12)

    def forward(self, x):
        B, N, C = x.shape  # 5, 8 here; fc(x) is 5 x 12
        return self.fc(x).reshape(B, 3, C // 2, N // 5)


def test_sizes_of_another_tensor_that_differ_stay_computed_and_are_refused_by_name():
    with pytest.raises(ImportProblem, match="computing more than one size in forward"):
        model_to_spec(SizesThatDiffer().eval(), (5, 8))


class ShapeBranch(nn.Module):
    """timm's VGG ConvMlp: a branch on the input's size, taken at the spec's input."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Conv2d(4, 6, 3)

    def forward(self, x):
        if x.shape[-2] < 3 or x.size(-1) < 3:
            x = torch.nn.functional.adaptive_avg_pool2d(x, (3, 3))
        b = x.size(0)
        return self.fc(x).reshape(b, -1)


def test_a_branch_on_the_input_size_is_traced_at_the_spec_s_input():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), ShapeBranch()).eval()
    imported = model_to_spec(model, (3, 5, 5))
    assert any("branches on its input's size; traced at the spec's input, 4×5×5" in note
               for note in imported.notes), imported.notes
    text = _round_trip(model, (3, 5, 5), torch.randn(2, 3, 5, 5))
    assert "adaptive" not in text.lower() and "Flatten" in text, text  # batch read, not 1
    # at a smaller input the other branch is taken: imported there, it holds the pool
    small = dumps(model_to_spec(model, (3, 2, 2)).data)
    assert "AdaptiveAvgPool2d" in small or "adaptive_avg_pool2d" in small, small


class DataBranch(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


def test_a_branch_on_values_is_still_refused_by_name():
    with pytest.raises(ImportProblem, match=r"torch\.fx cannot trace its forward"):
        model_to_spec(nn.Sequential(nn.Linear(3, 3), DataBranch()).eval(), (3,))


class AddsInPlace(nn.Module):
    """torchvision MViT v1's positional encoding: x.add_(pos) changes x, which is returned."""

    def __init__(self, view: bool = False):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.view = view

    def forward(self, x):
        h = self.fc(x)
        y = torch.cat((h, x), dim=1)
        if self.view:  # the change goes through a view of y
            y.view(y.shape[0], -1).add_(2.0)
        else:
            y.add_(h.sum(1, keepdim=True))
        return y


def test_an_in_place_change_of_a_tensor_is_its_value_after():
    model = AddsInPlace()
    text = _round_trip(model, (4, 6), torch.randn(3, 4, 6))
    assert "- Add" in text, text


def test_an_in_place_change_through_a_view_is_refused():
    with pytest.raises(ImportProblem, match="not the last thing its forward computes"):
        model_to_spec(AddsInPlace(view=True).eval(), (4, 6))
