"""ScaledDotProductAttention (F.scaled_dot_product_attention: query, key, value and an
optional attn_mask), declared in netspec/ops/attention.py: its rule, dtypes and MACs against
torch, and every command on it."""

from __future__ import annotations

import importlib.util
import itertools
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec
from netspec.ops import REGISTRY, Args, ShapeError

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")
BATCHES = (2, 3)
FLAGS = ("dropout_p", "is_causal", "scale", "enable_gqa")


def torch_verdict(shapes, dtypes, kw):
    """(sample shape, dtype) of F.scaled_dot_product_attention at batches 2 and 3, or None
    where it raises or where the sample shape depends on the batch."""
    seen = set()
    for n in BATCHES:
        tensors = [torch.ones(n, *s, dtype=getattr(torch, d))
                   for s, d in zip(shapes, dtypes, strict=True)]
        try:
            out = F.scaled_dot_product_attention(*tensors, **kw)
        except (RuntimeError, IndexError):
            return None
        if out.shape[:1] != (n,):
            return None
        seen.add((tuple(out.shape[1:]), str(out.dtype).removeprefix("torch.")))
    return seen.pop() if len(seen) == 1 else None


def netspec_verdict(shapes, dtypes, kw):
    lt = REGISTRY["ScaledDotProductAttention"]
    a = Args.filled(lt, kw, [f"{p.name} {i}" for i, p in enumerate(lt.inputs)])
    try:
        return (tuple(lt.rule(a, list(shapes))), lt.dtype(a, list(dtypes))), None
    except ShapeError as exc:
        return None, exc.message


@st.composite
def attention_case(draw):
    """Mostly valid: query …×L×E, key …×S×E, value …×S×Ev of one rank (heads that broadcast,
    or with enable_gqa divide the query's), an optional mask broadcasting to …×L×S; then
    sometimes one size, rank, head count or dtype changed."""
    rank = draw(st.integers(2, 4)) if draw(st.integers(0, 9)) else 1
    lead = [draw(st.integers(1, 3)) for _ in range(max(rank - 3, 0))]
    hq = draw(st.sampled_from([1, 2, 4, 6]))
    gqa = draw(st.booleans())
    hk = draw(st.sampled_from([h for h in (1, 2, 3, 4, 6) if hq % h == 0] if gqa else [hq, 1]))
    hv = hk if draw(st.integers(0, 3)) else draw(st.sampled_from([1, 2, 3, hq]))
    length, source, e, ev = (draw(st.integers(1, 4)) for _ in range(4))
    heads = rank >= 3

    def shape(h, rows, cols):
        return tuple([*lead, *([h] if heads else []), rows, cols][-rank:])

    q, k, v = shape(hq, length, e), shape(hk, source, e), shape(hv, source, ev)
    shapes = [list(q), list(k), list(v)]
    how = draw(st.sampled_from(["valid"] * 4 + ["e", "s", "rank", "lead"]))
    i = draw(st.integers(0, 2))
    if how in ("e", "s") and rank >= 2:
        shapes[i][-1 if how == "e" else -2] = draw(st.integers(1, 4))
    elif how == "rank":
        shapes[i].insert(0, draw(st.integers(1, 2))) if draw(st.booleans()) else shapes[i].pop(0)
    elif how == "lead" and rank >= 3:
        shapes[i][0] = draw(st.integers(1, 4))
    kw = {"enable_gqa": gqa}
    if draw(st.integers(0, 2)) == 0:
        weights = [*(max(p) for p in zip(*(s[:-2] for s in shapes[:3]), strict=False)),
                   length, source][-len(shapes[0]):]
        mask = [d if draw(st.integers(0, 2)) else 1 for d in weights]
        if draw(st.integers(0, 5)) == 0 and mask:
            mask[draw(st.integers(0, len(mask) - 1))] = draw(st.integers(1, 5))
        if draw(st.integers(0, 7)) == 0:
            mask = mask[1:] if mask and draw(st.booleans()) else [1, *mask]
        shapes.append(mask)
    kw["is_causal"] = draw(st.integers(0, 3)) == 0
    kw["scale"] = draw(st.sampled_from([None, None, 0.125, -1.0, 0.0]))
    kw["dropout_p"] = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))
    first = draw(st.sampled_from(DTYPES[:4])) if draw(st.integers(0, 2)) == 0 else "float32"
    dtypes = [first if draw(st.integers(0, 7)) else draw(st.sampled_from(DTYPES))
              for _ in range(3)]
    if len(shapes) > 3:
        dtypes.append(draw(st.sampled_from(["float32", first, *DTYPES])))
    return [tuple(s) for s in shapes], dtypes, kw


@settings(max_examples=examples(150))
@given(case=attention_case())
def test_attention_agrees_with_torch(case):
    """Drawn shapes, heads (grouped-query included), masks, flags and dtypes: netspec refuses
    exactly when torch raises (or attends across the batch), else gives torch's shape and
    dtype."""
    shapes, dtypes, kw = case
    ours, why = netspec_verdict(shapes, dtypes, kw)
    theirs = torch_verdict(shapes, dtypes, kw)
    if ours is None and theirs is not None:
        # DELIBERATE: with its batch a 1-d sample is a 2-d tensor, which torch reads as one
        # L×E matrix: each output row attends over the whole batch (shapes agree, samples mix)
        assert any(len(s) == 1 for s in shapes[:3]) and "across the batch" in why, (case, why)
        return
    assert ours == theirs, (case, ours, theirs, why)


def _agree(shapes, dtypes, kw):
    ours, why = netspec_verdict(shapes, dtypes, kw)
    theirs = torch_verdict(shapes, dtypes, kw)
    assert ours == theirs, (shapes, dtypes, kw, ours, theirs, why)


@pytest.mark.parametrize("gqa", [False, True])
def test_every_head_count_agrees_with_torch(gqa):
    """Query, key and value heads 1 to 6 each, with and without enable_gqa: broadcasting
    (equal, or 1) and grouped-query heads (key and value heads dividing the query's)."""
    for hq, hk, hv in itertools.product(range(1, 7), repeat=3):
        _agree([(hq, 2, 4), (hk, 3, 4), (hv, 3, 5)], ["float32"] * 3, {"enable_gqa": gqa})


def test_every_mask_shape_agrees_with_torch():
    """Masks of the query's rank with each dim 1, right or wrong (heads 2, L 3, S 4), and of
    one rank less or more; with and without is_causal; float32, the query's dtype or not."""
    sizes = [(1, 2, 5), (1, 3, 5), (1, 4, 5)]
    masks = [tuple(m) for m in itertools.product(*sizes)]
    masks += [m[1:] for m in masks[:6]] + [(1, *m) for m in masks[:6]]
    for mask, causal, (qd, md) in itertools.product(
            masks, (False, True), (("float32", "float32"), ("float16", "float16"),
                                   ("float16", "float32"), ("float32", "float64"))):
        _agree([(2, 3, 6), (2, 4, 6), (2, 4, 5), mask], [qd, qd, qd, md],
               {"is_causal": causal})


@pytest.mark.parametrize(("shapes", "kw"), [
    ([(4, 10, 16), (4, 12, 16), (4, 12, 8)], {}),
    ([(4, 10, 16), (4, 10, 16), (4, 10, 16)], {"is_causal": True}),
    ([(8, 10, 16), (2, 12, 16), (2, 12, 16)], {"enable_gqa": True}),
    ([(3, 4, 10, 16), (3, 1, 12, 16), (3, 1, 12, 24)], {}),
    ([(10, 16), (12, 16), (12, 16), (10, 12)], {}),
])
def test_macs_are_flop_counter_of_the_math_kernel(shapes, kw):
    """MACs per sample = FlopCounterMode / 2 on the math kernel (which the meta device runs
    too); torch's fused CPU kernel reports 0 flops, so it is not the reference."""
    lt = REGISTRY["ScaledDotProductAttention"]
    a = Args.filled(lt, kw)
    out = tuple(lt.rule(a, list(shapes)))
    ours = lt.macs(a, list(shapes), out)
    batch = 2
    for device in ("cpu", "meta"):
        tensors = [torch.ones(batch, *s, device=device) for s in shapes]
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            F.scaled_dot_product_attention(*tensors, **kw)
        assert counter.get_total_flops() == 2 * ours * batch, device


SPEC = """\
netspec: 1
name: Heads
input: [4, 10, 16]
layers:
  - Linear: {out_features: 16}
    name: q
  - Linear: {out_features: 16}
    name: k
    from: input
  - Linear: {out_features: 8}
    name: v
    from: input
  - ScaledDotProductAttention: {is_causal: true}
    from: [q, k, v]
    name: attn
"""

MASKED = """\
netspec: 1
name: Masked
input: [4, 10, 16]
layers:
  - Linear: {out_features: 10}
    name: bias
  - ScaledDotProductAttention: {scale: 0.5}
    from: [input, input, input, bias]
    name: attn
"""


@pytest.mark.parametrize("spec", [SPEC, MASKED])
def test_check_summary_render(spec):
    result = netspec.check(spec)
    assert result.ok, result.errors
    attn = result.layers[-1]
    assert attn.output_shape == ((4, 10, 8) if spec is SPEC else (4, 10, 16))
    rows = {r.name: r for r in summarize(result).rows}
    e, ev = (16, 8) if spec is SPEC else (16, 16)
    assert rows["attn"].params == 0 and rows["attn"].macs == 4 * 10 * 10 * (e + ev)
    dot = to_dot(result)
    assert "ScaledDotProductAttention" in dot and ("is_causal" in dot or "scale 0.5" in dot)


@pytest.mark.parametrize(("spec", "change", "message", "where"), [
    (SPEC, "out_features: 16}\n    name: k", "the query (4×10×16 from 'q') and the key "
     "(4×10×12 from 'k') have different embedding sizes, 16 and 12", (13, 5)),
    (MASKED, "{scale: 0.5}", "is_causal and attn_mask together: torch takes one or the other",
     (7, 56)),
    (MASKED, "out_features: 10", "the attn_mask (4×10×9 from 'bias') and the attention weights "
     "(4×10×10: …×L×S) do not broadcast: dim 3 (batch included) has sizes 9, 10", (7, 5)),
])
def test_refusals_name_the_inputs_and_numbers(spec, change, message, where):
    replaced = {"out_features: 16}\n    name: k": "out_features: 12}\n    name: k",
                "{scale: 0.5}": "{scale: 0.5, is_causal: true}",
                "out_features: 10": "out_features: 9"}[change]
    errors = netspec.check(spec.replace(change, replaced)).errors
    assert len(errors) == 1 and message in errors[0].message, errors
    assert (errors[0].line, errors[0].col) == where


def test_dropout_warns_that_it_applies_in_eval_and_above_one_is_refused():
    warned = netspec.check(SPEC.replace("{is_causal: true}", "{dropout_p: 0.1}"))
    assert warned.ok and any("dropout_p 0.1 is applied in eval too" in d.message
                             for d in warned.diagnostics)
    assert not netspec.check(SPEC.replace("{is_causal: true}", "{dropout_p: 1.5}")).ok


def _module(source: str, tmp_path, name: str):
    path = tmp_path / f"{name.lower()}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name.lower(), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name.lower()] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.mark.parametrize("spec", [SPEC, MASKED])
def test_build_and_codegen(spec, tmp_path):
    result = netspec.check(spec)
    model = netspec.build(result).eval()
    x = torch.randn(2, 4, 10, 16)
    with torch.no_grad():
        if spec is SPEC:
            expected = F.scaled_dot_product_attention(model.q(x), model.k(x), model.v(x),
                                                      is_causal=True)
        else:
            expected = F.scaled_dot_product_attention(x, x, x, model.bias(x), scale=0.5)
        assert torch.equal(model(x), expected)
    source = generate(result, "class")
    call = ("out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)"
            if spec is SPEC else
            "out = nn.functional.scaled_dot_product_attention(x, x, x, bias, scale=0.5)")
    assert call in source, source
    name = result.network.name
    generated = _module(source, tmp_path, name)().eval()
    generated.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(generated(x), model(x))


class Attention(nn.Module):
    def __init__(self, masked: bool):
        super().__init__()
        self.q = nn.Linear(16, 16)
        self.k = nn.Linear(16, 16)
        self.v = nn.Linear(16, 16)
        self.bias = nn.Linear(16, 10)
        self.masked = masked

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.masked:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias(x), scale=0.25)
        return F.scaled_dot_product_attention(q, k, v, None, 0.0, True)


@pytest.mark.parametrize("masked", [False, True])
def test_import_round_trip(masked):
    reference = Attention(masked).eval()
    if not masked:
        del reference.bias
    imported = model_to_spec(reference, (4, 10, 16))
    last = imported.data["layers"][-1]
    assert last == ({"ScaledDotProductAttention": {"scale": 0.25}, "name":
                     "scaled_dot_product_attention", "from": ["q", "k", "v", "bias"]}
                    if masked else
                    {"ScaledDotProductAttention": {"is_causal": True}, "name":
                     "scaled_dot_product_attention", "from": ["q", "k", "v"]})
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 4, 10, 16)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
