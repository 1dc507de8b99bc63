"""Interpolate (F.interpolate) in its two forms, declared in netspec/ops/reshape.py: a fixed
size or scale_factor, and the spatial size of a second input read at run time
(F.interpolate(x, size=skip.shape[2:]), a segmentation head's).  Its rule and dtypes against
torch, and every command on it."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.ops import REGISTRY, Args, ShapeError
from netspec.ops.reshape import INTERPOLATE_MODES

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")
BATCHES = (2, 3)
SCALES = (0.1, 0.25, 0.5, 1.0, 1.5, 2, 2.5, 3)


def torch_verdict(x, like, dtype, kw):
    """(sample shape, dtype) of F.interpolate at batches 2 and 3 (size=like.shape[2:] where a
    second input is given), or None where it raises."""
    seen = set()
    for n in BATCHES:
        tensor = torch.ones(n, *x, dtype=getattr(torch, dtype))
        args = dict(kw)
        if like is not None:
            args["size"] = torch.ones(n, *like).shape[2:]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = F.interpolate(tensor, **args)
        except (RuntimeError, ValueError, NotImplementedError, TypeError):
            return None
        seen.add((tuple(out.shape), str(out.dtype).removeprefix("torch.")))
    outs = {(shape[1:], d) for shape, d in seen}
    return outs.pop() if len(outs) == 1 and all(s[0] in BATCHES for s, _ in seen) else None


def netspec_verdict(x, like, dtype, given_args):
    """The declaration's verdict as check reaches it: the port's ranks, the rule, the dtype."""
    lt = REGISTRY["Interpolate"]
    ranks = lt.inputs[0].ranks
    if len(x) not in ranks:
        return None, f"rank {len(x)}"
    shapes = [x] if like is None else [x, like]
    a = Args.filled(lt, given_args, ["input", "like"][: len(shapes)])
    try:
        return (tuple(lt.rule(a, shapes)), lt.dtype(a, [dtype, "float32"][: len(shapes)])), None
    except ShapeError as exc:
        return None, exc.message


def _agree(x, like, dtype, kw):
    ours, why = netspec_verdict(x, like, dtype, kw)
    theirs = torch_verdict(x, like, dtype, {k: tuple(v) if isinstance(v, list) else v
                                            for k, v in kw.items()})
    assert ours == theirs, (x, like, dtype, kw, ours, theirs, why)


@st.composite
def sample(draw, rank=None):
    """C + 1 to 3 spatial dims (sometimes none or four: ranks torch refuses)."""
    if rank is None:
        rank = draw(st.integers(2, 4)) if draw(st.integers(0, 5)) else draw(st.sampled_from([1, 5]))
    return (draw(st.integers(1, 3)), *(draw(st.integers(1, 6)) for _ in range(rank - 1)))


def _mode_for(draw, x) -> str:
    """Mostly a mode that takes this rank, sometimes any."""
    fits = [m for m in INTERPOLATE_MODES if m not in ("linear", "bilinear", "bicubic",
                                                         "trilinear", "lanczos")
            or {"linear": 2, "trilinear": 4}.get(m, 3) == len(x)]
    return draw(st.sampled_from(fits if draw(st.integers(0, 4)) else INTERPOLATE_MODES))


def _flags(draw, kw):
    """align_corners, recompute_scale_factor and antialias: mostly what the mode takes,
    sometimes any."""
    valid = draw(st.integers(0, 4)) > 0
    mode = kw["mode"]
    interpolating = mode not in ("nearest", "area", "nearest-exact")
    for arg, values in (("align_corners", [None, True, False]),
                        ("recompute_scale_factor", [None, None, True, False]),
                        ("antialias", [False, True])):
        if valid and arg == "align_corners" and not interpolating:
            continue
        if valid and arg == "antialias" and mode not in ("bilinear", "bicubic", "lanczos"):
            continue
        if valid and arg == "recompute_scale_factor" and "size" in kw:
            continue
        value = draw(st.sampled_from(values))
        if valid and mode == "lanczos":
            value = {"antialias": True, "align_corners": False}.get(arg, value)
        if value is not None:
            kw[arg] = value


def _dtype(draw):
    return draw(st.sampled_from(DTYPES)) if draw(st.integers(0, 3)) == 0 else "float32"


@settings(max_examples=examples(150))
@given(data=st.data())
def test_fixed_size_or_scale_agrees_with_torch(data):
    """Drawn samples, modes, sizes and scales (ints or lists, sometimes of the wrong length,
    sometimes both or neither), flags and dtypes: netspec refuses exactly when torch raises,
    else gives torch's shape and dtype."""
    draw = data.draw
    x = draw(sample())
    kw = {"mode": _mode_for(draw, x)}
    form = draw(st.sampled_from(["size", "scale", "scale", "both", "none"]))
    n = len(x) - 1
    if form in ("size", "both"):
        length = n if draw(st.integers(0, 5)) else draw(st.integers(1, 4))
        kw["size"] = draw(st.integers(1, 7)) if draw(st.booleans()) else \
            [draw(st.integers(1, 7)) for _ in range(length)]
    if form in ("scale", "both"):
        length = n if draw(st.integers(0, 5)) else draw(st.integers(1, 4))
        kw["scale_factor"] = draw(st.sampled_from(SCALES)) if draw(st.booleans()) else \
            [draw(st.sampled_from(SCALES)) for _ in range(length)]
    _flags(draw, kw)
    _agree(x, None, _dtype(draw), kw)


@settings(max_examples=examples(100))
@given(data=st.data())
def test_size_of_a_second_input_agrees_with_torch(data):
    """A second input whose spatial size is taken (F.interpolate(x, size=like.shape[2:])):
    like of the same rank (or not), sometimes with size or scale_factor given too."""
    draw = data.draw
    x = draw(sample())
    like = draw(sample(len(x) if draw(st.integers(0, 4)) else draw(st.integers(0, 5))))
    kw = {"mode": _mode_for(draw, x)}
    if draw(st.integers(0, 5)) == 0:
        kw[draw(st.sampled_from(["size", "scale_factor"]))] = 2
    _flags(draw, kw)
    if "size" in kw:  # a size twice: no torch call says that
        assert netspec_verdict(x, like, "float32", kw)[0] is None
        return
    _agree(x, like, _dtype(draw), kw)


@pytest.mark.parametrize("mode", INTERPOLATE_MODES)
def test_every_mode_rank_flag_and_dtype_agrees_with_torch(mode):
    """Each mode at every rank with every align_corners, antialias and dtype."""
    for rank, align, antialias, dtype in itertools.product(
            (1, 2, 3, 4, 5), (None, True, False), (False, True), DTYPES):
        kw = {"mode": mode, "scale_factor": 2, "antialias": antialias}
        if align is not None:
            kw["align_corners"] = align
        _agree((2, *(3,) * (rank - 1)), None, dtype, kw)


SPEC = """\
netspec: 1
name: SegHead
input: [3, 16, 12]
layers:
  - Conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
    name: down
  - Conv2d: {out_channels: 4, kernel_size: 1}
    name: classifier
  - Interpolate: {mode: bilinear, align_corners: false}
    from: [classifier, input]
    name: up
  - Interpolate: {scale_factor: 0.5}
    name: halved
  - Interpolate: {size: [5, 7], mode: bicubic, antialias: true}
    name: fixed
"""


def _module(source: str, tmp_path, name: str):
    path = tmp_path / f"{name.lower()}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name.lower(), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name.lower()] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_check_summary_render():
    result = netspec.check(SPEC)
    assert result.ok, result.errors
    assert [r.output_shape for r in result.layers[2:]] == [(4, 16, 12), (4, 8, 6), (4, 5, 7)]
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["up"].params == 0 and rows["up"].macs == 0
    dot = to_dot(result)
    assert "Interpolate" in dot and '"@input" -> up' in dot  # the size's source is drawn


def test_build_reads_the_size_at_run_time(tmp_path):
    """Built and generated models take the second input's size from the tensor, so they run
    at another image size exactly as the reference expression does."""
    result = netspec.check(SPEC)
    model = netspec.build(result).eval()
    source = generate(result, "class")
    assert ('out = nn.functional.interpolate(out, size=x.shape[2:], mode="bilinear", '
            'align_corners=False)') in source, source
    assert "nn.functional.interpolate(out, scale_factor=0.5)" in source
    generated = _module(source, tmp_path, "SegHead")().eval()
    generated.load_state_dict(model.state_dict())
    for shape in ((2, 3, 16, 12), (1, 3, 30, 22)):
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model.classifier(model.down(x))
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            y = F.interpolate(F.interpolate(y, scale_factor=0.5), size=(5, 7), mode="bicubic",
                              antialias=True)
            assert torch.equal(model(x), y)
            assert torch.equal(generated(x), y)


@pytest.mark.parametrize(("change", "message"), [
    ("{scale_factor: 0.5}", None),
    ("{mode: bilinear, align_corners: false}\n    from: [classifier, input]",
     "the size comes from the second input (3×16×12 from 'input'); give size or a second "
     "input, not both"),
])
def test_refusals(change, message):
    if message is None:  # a second input and size, then neither
        spec = SPEC.replace("{mode: bilinear, align_corners: false}", "{size: 4}")
        errors = netspec.check(spec).errors
        assert "give size or a second input, not both" in errors[0].message
        spec = SPEC.replace("{scale_factor: 0.5}", "{mode: nearest}")
        errors = netspec.check(spec).errors
        assert "give size, scale_factor, or a second input whose spatial size to take" in \
            errors[0].message
        return
    spec = SPEC.replace(change, "{size: 4, mode: bilinear}\n    from: [classifier, input]")
    assert message in netspec.check(spec).errors[0].message


def test_mode_and_antialias_refusals_point_at_the_argument():
    spec = SPEC.replace("{size: [5, 7], mode: bicubic, antialias: true}",
                        "{size: [5, 7], mode: nearest, antialias: true}")
    [error] = netspec.check(spec).errors
    assert "antialias works with the modes bilinear, bicubic, lanczos only (mode is " \
           "'nearest')" in error.message and (error.line, error.col) == (14, 59)
    spec = SPEC.replace("input: [3, 16, 12]", "input: {shape: [3, 16, 12], dtype: float16}")
    assert any("antialias on float16 is not implemented in torch on the CPU" in d.message
               for d in netspec.check(spec).errors)


class Segmentation(nn.Module):
    """torchvision's segmentation models end so: the head's output resized to the input."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.classifier = nn.Conv2d(8, 4, 1)
        self.skip = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        input_shape = x.shape[-2:]
        skip = self.skip(x)
        y = self.classifier(self.down(x))
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        y = F.interpolate(y, size=skip.size()[2:], mode="bilinear", align_corners=False)
        return F.interpolate(y, size=input_shape, mode="bilinear", align_corners=False)


def test_import_round_trip():
    reference = Segmentation().eval()
    imported = model_to_spec(reference, (3, 16, 12))
    entries = [e for e in imported.data["layers"] if "Interpolate" in e]
    assert entries == [
        {"Interpolate": {"scale_factor": 2.0}, "name": "interpolate"},
        {"Interpolate": {"mode": "bilinear", "align_corners": False}, "name": "interpolate_1",
         "from": ["interpolate", "skip"]},
        {"Interpolate": {"mode": "bilinear", "align_corners": False}, "name": "interpolate_2",
         "from": ["interpolate_1", "input"]}]
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    for shape in ((2, 3, 16, 12), (1, 3, 20, 26)):
        x = torch.randn(*shape)
        with torch.no_grad():
            assert torch.equal(model(x), reference(x))


class ComputedSize(nn.Module):
    def __init__(self, spelling: int):
        super().__init__()
        self.spelling = spelling

    def forward(self, x):
        if self.spelling == 0:
            return F.interpolate(x, size=x.shape[1:])
        return F.interpolate(x, size=(x.shape[2], 4))


@pytest.mark.parametrize(("spelling", "message"), [
    (0, r"takes its size from 'getitem'; netspec reads a size from another tensor as "
        r"like.shape\[2:\]"),
    (1, r"takes its 'size' from a tensor computed in forward; netspec arguments are constants"),
])
def test_a_size_computed_otherwise_is_named(spelling, message):
    with pytest.raises(ImportProblem, match=message):
        model_to_spec(nn.Sequential(nn.Conv2d(3, 3, 1), ComputedSize(spelling)), (3, 8, 8))
