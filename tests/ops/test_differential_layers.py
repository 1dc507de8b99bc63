"""Differential tests: netspec's static verdicts against PyTorch as the oracle.

Families covered here: norm, activation, dropout, linear/embedding, reshape and recurrent.
Every layer type of those families gets a hypothesis test that draws valid AND invalid
arguments and sample shapes (wrong ranks, inferable arguments that disagree with the input,
indivisible sizes, out-of-range dims and probabilities, ...) and asserts, via
``oracle.assert_agree``, that netspec and torch agree on accept/refuse, the per-sample
output shape and the parameter count.  Each drawn spec is written in one of the forms a
user may write (keywords, keywords with inferable arguments left out, PyTorch's positional
list, a scalar, nothing).

Where netspec is deliberately stricter than torch the case is listed in ``DELIBERATE`` with
the reason; for those draws the test asserts that netspec refuses with a clear message
(and ``test_deliberate_deviation`` shows one concrete case each where torch accepts).
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import assert_agree, netspec_verdict, spec_text, torch_verdict

import netspec
from netspec.ops import REGISTRY, fmt
from netspec.ops.declare import REQUIRED
from netspec.ops.torch_side import torch_class

MODULES = {f"netspec.ops.{m}" for m in
           ("norm", "activation", "dropout", "linear", "reshape", "recurrent")}

# ------------------------------------------------------------------ deliberate deviations

DELIBERATE = {
    "sequence layer on a 1-d sample": (
        "RNN/LSTM/GRU/TransformerEncoderLayer on a (features,) sample: torch reads the batched "
        "2-d tensor as ONE unbatched sequence whose time axis is the batch, so samples are mixed "
        "(recurrence or attention across the batch). netspec asks for an L×features sample."),
    "instance norm without a channel dimension": (
        "InstanceNorm{n}d on an n-d sample (no C): torch reads the batched tensor as one "
        "unbatched sample whose channels are the batch; it only runs because num_features is "
        "then ignored (with a warning) when affine and track_running_stats are off, and breaks "
        "as soon as either is switched on. netspec asks for the channel dimension (C=1)."),
    "Softmax2d on a 2-d sample": (
        "Softmax2d on an H×W sample: torch takes the batched 3-d tensor as an unbatched C×H×W "
        "image and normalises ACROSS THE BATCH. netspec asks for a C×H×W sample."),
    "pixel shuffle on a 2-d sample": (
        "PixelShuffle/PixelUnshuffle on an H×W sample: torch reads the batch as channels; only "
        "factor 1 (a no-op) survives both batch sizes. netspec asks for a C×H×W sample."),
    "2d upsampling alias on a non-image sample": (
        "UpsamplingNearest2d on a C×L or C×D×H×W sample: torch silently switches to 1-d or 3-d "
        "upsampling (an H×W image without its channel dim is read as C=H, L=W and upsampled "
        "along W only). netspec keeps the 2d aliases to C×H×W; Upsample covers 1-d and 3-d."),
    "Identity with arguments": (
        "torch.nn.Identity(*args, **kwargs) accepts and ignores any arguments; netspec refuses "
        "them, as a typo or an argument meant for another layer would otherwise vanish."),
}


def deliberate(type_name: str, kwargs: dict, sample: tuple) -> tuple[str, str] | None:
    """The DELIBERATE key (and a fragment netspec's message must contain) for this case."""
    if type_name in ("RNN", "LSTM", "GRU", "TransformerEncoderLayer") and len(sample) == 1:
        return "sequence layer on a 1-d sample", "L×features sample"
    m = re.fullmatch(r"InstanceNorm(\d)d", type_name)
    if m and len(sample) == int(m.group(1)):
        return "instance norm without a channel dimension", "sample (batch excluded)"
    if type_name == "Softmax2d" and len(sample) == 2:
        return "Softmax2d on a 2-d sample", "C×H×W sample"
    if type_name in ("PixelShuffle", "PixelUnshuffle") and len(sample) == 2:
        return "pixel shuffle on a 2-d sample", "at least 3 dimensions"
    if type_name == "UpsamplingNearest2d" and len(sample) in (2, 4):
        return "2d upsampling alias on a non-image sample", "C×H×W sample"
    if type_name == "Identity" and kwargs:
        return "Identity with arguments", "argument"
    return None


# ------------------------------------------------------------------ drawing helpers


def spec_forms(type_name: str, kwargs: dict, sample: tuple) -> list[Any]:
    """Equivalent ways to write ``kwargs`` in a spec (netspec_args for assert_agree)."""
    lt = REGISTRY[type_name]
    forms: list[Any] = ["same"]
    if not kwargs:
        forms.append(None)
    # inferable arguments equal to what flows in may be left out
    inferred = {a.name for a in lt.args if a.infer is not None and a.name in kwargs
                and kwargs[a.name] == a.infer(sample)}
    if inferred:
        forms.append({k: v for k, v in kwargs.items() if k not in inferred})
    # PyTorch's positional list, defaults filled into the gaps
    names = [a.name for a in lt.positional]
    if kwargs and all(k in names for k in kwargs):
        last = max(names.index(k) for k in kwargs)
        values = []
        for arg in lt.positional[:last + 1]:
            if arg.name in kwargs:
                values.append(kwargs[arg.name])
            elif arg.default is not REQUIRED:
                values.append(arg.default)
            else:
                break
        else:
            forms.append(values)
            if len(values) == 1 and not isinstance(values[0], (list, dict)) \
                    and values[0] is not None:
                forms.append(values[0])  # a scalar is the first positional argument
    return forms


def check(data: st.DataObject, type_name: str, kwargs: dict, sample: tuple,
          dtype: str = "float32") -> None:
    """netspec agrees with torch, or (a listed deviation) refuses with a clear message."""
    form = data.draw(st.sampled_from(spec_forms(type_name, kwargs, sample)), label="form")
    dev = deliberate(type_name, kwargs, sample)
    if dev is not None:
        key, fragment = dev
        got = netspec_verdict(type_name, kwargs if form == "same" else form, sample, dtype)
        assert not got.ok, f"{type_name}({kwargs}) on {sample}: {key} must be refused"
        if torch_verdict(type_name, kwargs, sample, dtype).ok:
            # torch accepts it: netspec's refusal says what it wants instead
            assert fragment in got.why, got.why
        return
    assert_agree(type_name, kwargs, sample, dtype, form)


def sizes(rank: int, lo: int = 1, hi: int = 8) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*[st.integers(lo, hi)] * rank)


def near(data: st.DataObject, actual: int, label: str) -> int:
    """Mostly the right value, sometimes off by one or anything small."""
    wrong = [actual + 1] + ([actual - 1] if actual > 1 else [])
    return data.draw(st.one_of(st.just(actual), st.just(actual), st.just(actual),
                               st.sampled_from(wrong), st.integers(1, 8)), label=label)


def optional(data: st.DataObject, kwargs: dict, name: str, strategy: st.SearchStrategy) -> None:
    """Write ``name`` about half the time (else torch's and netspec's defaults apply)."""
    if data.draw(st.booleans(), label=f"write {name}"):
        kwargs[name] = data.draw(strategy, label=name)


def rank_of(data: st.DataObject, valid: list[int], invalid: list[int]) -> int:
    """A sample rank: a valid one most of the time."""
    return data.draw(st.sampled_from(valid * 3 + invalid), label="rank")


FLOATS = st.sampled_from([1e-5, 1e-3, 0.1, 1.0])
PROB = st.sampled_from([0.5, 1.5, 0.0, -0.1, 1.0, 0.2, 1, 0])  # two outside [0, 1]
BOOL = st.booleans()

# ------------------------------------------------------------------ norm


@pytest.mark.parametrize("n", [1, 2, 3])
@settings(max_examples=examples(40))
@given(data=st.data())
def test_batch_norm(n, data):
    valid = [1, 2] if n == 1 else [n + 1]
    rank = rank_of(data, valid, [r for r in (n, n + 2, 3) if r not in valid and r > 0])
    x = data.draw(sizes(rank, 1, 8 if rank <= 2 else 4), label="sample")
    kwargs = {"num_features": near(data, x[0], "num_features")}
    optional(data, kwargs, "eps", FLOATS)
    optional(data, kwargs, "momentum", st.sampled_from([0.1, None, 0.5]))
    optional(data, kwargs, "affine", BOOL)
    optional(data, kwargs, "track_running_stats", BOOL)
    optional(data, kwargs, "bias", BOOL)
    check(data, f"BatchNorm{n}d", kwargs, x)


@pytest.mark.parametrize("n", [1, 2, 3])
@settings(max_examples=examples(40))
@given(data=st.data())
def test_instance_norm(n, data):
    rank = rank_of(data, [n + 1], [n, n + 2])
    # 1s are frequent: one spatial element is refused when training
    dim = st.sampled_from([1, 1, 2, 3, 4] if rank > 2 else [1, 1, 2, 3, 5, 8])
    x = data.draw(st.tuples(st.integers(1, 6), *[dim] * (rank - 1)), label="sample")
    kwargs = {"num_features": near(data, x[0], "num_features")}
    optional(data, kwargs, "eps", FLOATS)
    optional(data, kwargs, "momentum", st.sampled_from([0.1, None]))
    optional(data, kwargs, "affine", BOOL)
    optional(data, kwargs, "track_running_stats", BOOL)
    optional(data, kwargs, "bias", BOOL)
    check(data, f"InstanceNorm{n}d", kwargs, x)


@pytest.mark.parametrize("type_name", ["LayerNorm", "RMSNorm"])
@settings(max_examples=examples(40))
@given(data=st.data())
def test_layer_and_rms_norm(type_name, data):
    rank = data.draw(st.integers(1, 3), label="rank")
    x = data.draw(sizes(rank, 1, 6), label="sample")
    k = data.draw(st.integers(1, rank + 1), label="normalized dims")  # rank + 1: too many
    ns = list(x[-k:]) if k <= rank else [2, *x]
    if data.draw(st.integers(0, 3), label="perturb") == 0:
        i = data.draw(st.integers(0, len(ns) - 1))
        ns[i] += data.draw(st.sampled_from([1, -1] if ns[i] > 1 else [1]))
    value: Any = ns[0] if len(ns) == 1 and data.draw(BOOL, label="as int") else ns
    kwargs: dict[str, Any] = {"normalized_shape": value}
    if type_name == "LayerNorm":
        optional(data, kwargs, "eps", FLOATS)
        optional(data, kwargs, "bias", BOOL)
    else:
        optional(data, kwargs, "eps", st.sampled_from([None, 1e-6, 0.1]))
    optional(data, kwargs, "elementwise_affine", BOOL)
    check(data, type_name, kwargs, x)


@settings(max_examples=examples(50))
@given(data=st.data())
def test_group_norm(data):
    rank = data.draw(st.integers(1, 3), label="rank")
    x = data.draw(sizes(rank, 1, 8 if rank == 1 else 5), label="sample")
    groups = data.draw(st.one_of(st.sampled_from([d for d in range(1, x[0] + 1) if x[0] % d == 0]),
                                 st.integers(1, 8)), label="num_groups")
    kwargs = {"num_groups": groups, "num_channels": near(data, x[0], "num_channels")}
    optional(data, kwargs, "eps", FLOATS)
    optional(data, kwargs, "affine", BOOL)
    optional(data, kwargs, "bias", BOOL)
    check(data, "GroupNorm", kwargs, x)


@settings(max_examples=examples(30))
@given(data=st.data())
def test_local_response_norm(data):
    rank = data.draw(st.integers(1, 4), label="rank")
    x = data.draw(sizes(rank, 1, 8 if rank <= 2 else 4), label="sample")
    kwargs = {"size": data.draw(st.integers(1, 10), label="size")}
    optional(data, kwargs, "alpha", st.sampled_from([1e-4, 0.5]))
    optional(data, kwargs, "beta", st.sampled_from([0.75, 1.0]))
    optional(data, kwargs, "k", st.sampled_from([1.0, 2.0]))
    check(data, "LocalResponseNorm", kwargs, x)


# ------------------------------------------------------------------ activations

SLOPE = st.sampled_from([0.01, 0.2, 0.0, -0.1, 1.0])
ELEMENTWISE_ARGS: dict[str, dict[str, st.SearchStrategy]] = {
    "ReLU": {}, "ReLU6": {}, "SELU": {}, "SiLU": {}, "Mish": {}, "Hardswish": {},
    "Hardsigmoid": {}, "Sigmoid": {}, "Tanh": {}, "LogSigmoid": {}, "Softsign": {},
    "Tanhshrink": {},
    "LeakyReLU": {"negative_slope": SLOPE},
    "RReLU": {"lower": st.sampled_from([0.0, 0.1, 1 / 8, 0.3, 0.5]),
              "upper": st.sampled_from([0.1, 1 / 3, 0.5, 0.05])},
    "ELU": {"alpha": st.sampled_from([1.0, 0.5, 0.0, -1.0])},
    "CELU": {"alpha": st.sampled_from([1.0, 0.5, 0.0, -1.0])},
    "GELU": {"approximate": st.sampled_from(["none", "tanh", "fast"])},
    "Softplus": {"beta": st.sampled_from([1.0, 0.5, 2, 0.0, -1.0]),
                 "threshold": st.sampled_from([20.0, 1.0, 0.0])},
    "Threshold": {"threshold": st.sampled_from([0.1, 0.0, -1.0]),
                  "value": st.sampled_from([0.0, 2, -1.5])},
}
INPLACE_TYPES = {name for name, lt in REGISTRY.items() if "inplace" in lt.arg_by_name}


@pytest.mark.parametrize("type_name", sorted(ELEMENTWISE_ARGS))
@settings(max_examples=examples(12))
@given(data=st.data())
def test_elementwise_activation(type_name, data):
    x = data.draw(sizes(data.draw(st.integers(1, 3), label="rank"), 1, 6), label="sample")
    kwargs: dict[str, Any] = {}
    for name, strategy in ELEMENTWISE_ARGS[type_name].items():
        if name in ("threshold", "value") and type_name == "Threshold":
            kwargs[name] = data.draw(strategy, label=name)  # required
        else:
            optional(data, kwargs, name, strategy)
    if type_name in INPLACE_TYPES:
        optional(data, kwargs, "inplace", BOOL)
    check(data, type_name, kwargs, x)


@settings(max_examples=examples(25))
@given(data=st.data())
def test_hardtanh(data):
    x = data.draw(sizes(data.draw(st.integers(1, 3)), 1, 6), label="sample")
    kwargs: dict[str, Any] = {}
    optional(data, kwargs, "min_val", st.sampled_from([-2.0, -1.0, 0.0, 1.0, 2.0]))
    optional(data, kwargs, "max_val", st.sampled_from([-2.0, -1.0, 0.0, 1.0, 2.0]))
    optional(data, kwargs, "inplace", BOOL)
    check(data, "Hardtanh", kwargs, x)


@pytest.mark.parametrize("type_name", ["Softshrink", "Hardshrink"])
@settings(max_examples=examples(15))
@given(data=st.data())
def test_shrink(type_name, data):
    x = data.draw(sizes(data.draw(st.integers(1, 3)), 1, 6), label="sample")
    kwargs: dict[str, Any] = {}
    optional(data, kwargs, "lambd", st.sampled_from([0.5, 0.0, 1.0, -0.5, 2]))
    check(data, type_name, kwargs, x)


@settings(max_examples=examples(40))
@given(data=st.data())
def test_prelu(data):
    x = data.draw(sizes(data.draw(st.integers(1, 3)), 1, 6), label="sample")
    kwargs: dict[str, Any] = {}
    optional(data, kwargs, "num_parameters",
             st.one_of(st.just(1), st.just(x[0]), st.integers(1, 8)))
    optional(data, kwargs, "init", st.sampled_from([0.25, 0.0, -1.0]))
    check(data, "PReLU", kwargs, x)


@pytest.mark.parametrize("type_name", ["Softmax", "LogSoftmax", "Softmin"])
@settings(max_examples=examples(25))
@given(data=st.data())
def test_softmax(type_name, data):
    rank = data.draw(st.integers(1, 3), label="rank")
    x = data.draw(sizes(rank, 1, 6), label="sample")
    kwargs: dict[str, Any] = {}
    # batched rank is rank + 1: valid dims are [-(rank+1), rank]; one more each side is out
    optional(data, kwargs, "dim", st.one_of(st.none(), st.integers(-rank - 2, rank + 1)))
    check(data, type_name, kwargs, x)


@settings(max_examples=examples(20))
@given(data=st.data())
def test_softmax2d(data):
    x = data.draw(sizes(data.draw(st.integers(1, 4)), 1, 5), label="sample")
    check(data, "Softmax2d", {}, x)


@settings(max_examples=examples(40))
@given(data=st.data())
def test_glu(data):
    rank = data.draw(st.integers(1, 3), label="rank")
    x = data.draw(sizes(rank, 1, 8), label="sample")
    kwargs: dict[str, Any] = {}
    optional(data, kwargs, "dim", st.integers(-rank - 2, rank + 1))
    check(data, "GLU", kwargs, x)


# ------------------------------------------------------------------ dropout

DROPOUTS = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
            "FeatureAlphaDropout"]


@pytest.mark.parametrize("type_name", DROPOUTS)
@settings(max_examples=examples(20))
@given(data=st.data())
def test_dropout(type_name, data):
    rank = data.draw(st.integers(1, 5), label="rank")
    x = data.draw(sizes(rank, 1, 6 if rank <= 2 else 3), label="sample")
    kwargs: dict[str, Any] = {}
    optional(data, kwargs, "p", PROB)
    optional(data, kwargs, "inplace", BOOL)
    check(data, type_name, kwargs, x)


# ------------------------------------------------------------------ linear, embedding


@settings(max_examples=examples(50))
@given(data=st.data())
def test_linear(data):
    x = data.draw(sizes(data.draw(st.integers(1, 4)), 1, 6), label="sample")
    kwargs: dict[str, Any] = {"in_features": near(data, x[-1], "in_features"),
                              "out_features": data.draw(st.integers(1, 8), label="out")}
    optional(data, kwargs, "bias", BOOL)
    check(data, "Linear", kwargs, x)


@settings(max_examples=examples(15))
@given(data=st.data())
def test_identity(data):
    x = data.draw(sizes(data.draw(st.integers(1, 4)), 1, 6), label="sample")
    kwargs = data.draw(st.sampled_from([{}, {}, {}, {"in_features": x[-1]}, {"p": 0.5}]),
                       label="kwargs")
    check(data, "Identity", kwargs, x, data.draw(st.sampled_from(["float32", "int64", "int32"])))


@settings(max_examples=examples(50))
@given(data=st.data())
def test_embedding(data):
    x = data.draw(sizes(data.draw(st.integers(1, 3)), 1, 6), label="sample")
    n = data.draw(st.integers(1, 8), label="num_embeddings")
    kwargs: dict[str, Any] = {"num_embeddings": n,
                              "embedding_dim": data.draw(st.integers(1, 8), label="dim")}
    optional(data, kwargs, "padding_idx", st.one_of(st.none(), st.integers(-n - 2, n + 1)))
    optional(data, kwargs, "max_norm", st.sampled_from([None, 1.0, 0.5]))
    optional(data, kwargs, "norm_type", st.sampled_from([2.0, 1.0]))
    optional(data, kwargs, "scale_grad_by_freq", BOOL)
    optional(data, kwargs, "sparse", BOOL)
    dtype = data.draw(st.sampled_from(["int64", "int64", "int32", "float32"]), label="dtype")
    check(data, "Embedding", kwargs, x, dtype)


# ------------------------------------------------------------------ reshape


@settings(max_examples=examples(50))
@given(data=st.data())
def test_flatten(data):
    rank = data.draw(st.integers(1, 4), label="rank")
    # 1s are frequent: start_dim 0 works in torch when the dims it merges into the batch are 1
    x = data.draw(st.tuples(*[st.sampled_from([1, 1, 2, 3, 5])] * rank), label="sample")
    dims = st.integers(-rank - 2, rank + 1)  # batched rank + 1 each side: out of range
    kwargs: dict[str, Any] = {}
    optional(data, kwargs, "start_dim", dims)
    optional(data, kwargs, "end_dim", dims)
    check(data, "Flatten", kwargs, x, data.draw(st.sampled_from(["float32", "int64"])))


def _factorisations(n: int, parts: int) -> list[list[int]]:
    if parts == 1:
        return [[n]]
    return [[d, *rest] for d in range(1, n + 1) if n % d == 0
            for rest in _factorisations(n // d, parts - 1)]


@settings(max_examples=examples(60))
@given(data=st.data())
def test_unflatten(data):
    rank = data.draw(st.integers(1, 3), label="rank")
    x = data.draw(sizes(rank, 1, 8), label="sample")
    dim = data.draw(st.integers(-rank - 2, rank + 1), label="dim")
    d = dim % (rank + 1) - 1 if -rank - 1 <= dim <= rank else None
    size = x[d] if d is not None and d >= 0 else data.draw(st.integers(1, 4), label="target")
    parts = data.draw(st.integers(1, 3), label="parts")
    sizes_ = list(data.draw(st.sampled_from(_factorisations(size, parts)), label="factors"))
    tweak = data.draw(st.sampled_from(["none", "none", "-1", "-1", "two -1", "wrong", "zero"]),
                      label="tweak")
    i = data.draw(st.integers(0, parts - 1), label="at")
    if tweak == "-1":
        sizes_[i] = -1
    elif tweak == "two -1":
        sizes_[i] = -1
        sizes_.append(-1)
    elif tweak == "wrong":
        sizes_[i] += 1
    elif tweak == "zero":
        sizes_[i] = 0
    check(data, "Unflatten", {"dim": dim, "unflattened_size": sizes_}, x,
          data.draw(st.sampled_from(["float32", "int64"])))


TRICKY_SCALES = [2, 1, 1.5, 0.3, 2.7, 0.5, 0.1, 1.1, 3, 0.7]
MODES = ["nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact",
         "lanczos"]  # lanczos needs antialias, which Upsample never passes: always refused


def draw_size_and_scale(data: st.DataObject, n: int, kwargs: dict) -> None:
    """size and/or scale_factor: usually exactly one, sometimes both or neither, as an int or
    a list whose length usually matches the n spatial dimensions."""
    which = data.draw(st.sampled_from(["size", "scale", "size", "scale", "both", "neither"]),
                      label="which")
    length = data.draw(st.sampled_from([n, n, n, max(1, n - 1), n + 1]), label="length")
    if which in ("size", "both"):
        kwargs["size"] = data.draw(st.one_of(st.integers(1, 10),
                                             st.lists(st.integers(1, 10), min_size=length,
                                                      max_size=length)), label="size")
    if which in ("scale", "both"):
        scale = st.sampled_from(TRICKY_SCALES)
        kwargs["scale_factor"] = data.draw(st.one_of(
            scale, st.lists(scale, min_size=length, max_size=length)), label="scale_factor")


@settings(max_examples=examples(200))
@given(data=st.data())
def test_upsample(data):
    rank = rank_of(data, [2, 3, 4], [1, 5])
    x = data.draw(sizes(rank, 1, 10 if rank <= 3 else 5), label="sample")
    kwargs: dict[str, Any] = {}
    draw_size_and_scale(data, rank - 1, kwargs)
    optional(data, kwargs, "mode", st.sampled_from(MODES))
    optional(data, kwargs, "align_corners", st.sampled_from([None, True, False]))
    optional(data, kwargs, "recompute_scale_factor", st.sampled_from([None, True, False]))
    check(data, "Upsample", kwargs, x)


@pytest.mark.parametrize("type_name", ["UpsamplingNearest2d", "UpsamplingBilinear2d"])
@settings(max_examples=examples(40))
@given(data=st.data())
def test_upsampling_2d(type_name, data):
    rank = rank_of(data, [3], [2, 4])
    x = data.draw(sizes(rank, 1, 8 if rank <= 3 else 4), label="sample")
    kwargs: dict[str, Any] = {}
    draw_size_and_scale(data, rank - 1, kwargs)
    check(data, type_name, kwargs, x)


@settings(max_examples=examples(40))
@given(data=st.data())
def test_pixel_shuffle(data):
    rank = rank_of(data, [3, 4], [1, 2])
    r = data.draw(st.integers(1, 3), label="upscale_factor")
    x = list(data.draw(sizes(rank, 1, 4), label="sample"))
    if rank >= 3 and data.draw(BOOL, label="divisible"):
        x[-3] = r * r * data.draw(st.integers(1, 2))
    check(data, "PixelShuffle", {"upscale_factor": r}, tuple(x))


@settings(max_examples=examples(40))
@given(data=st.data())
def test_pixel_unshuffle(data):
    rank = rank_of(data, [3, 4], [1, 2])
    r = data.draw(st.integers(1, 3), label="downscale_factor")
    x = list(data.draw(sizes(rank, 1, 6), label="sample"))
    if rank >= 2 and data.draw(BOOL, label="divisible"):
        x[-1] = r * data.draw(st.integers(1, 3))
        x[-2] = r * data.draw(st.integers(1, 3))
    check(data, "PixelUnshuffle", {"downscale_factor": r}, tuple(x))


@settings(max_examples=examples(30))
@given(data=st.data())
def test_channel_shuffle(data):
    rank = data.draw(st.integers(1, 4), label="rank")
    x = data.draw(sizes(rank, 1, 8 if rank <= 2 else 4), label="sample")
    check(data, "ChannelShuffle", {"groups": data.draw(st.integers(1, 4), label="groups")}, x)


# ------------------------------------------------------------------ recurrent


@pytest.mark.parametrize("type_name", ["RNN", "LSTM", "GRU"])
@settings(max_examples=examples(50))
@given(data=st.data())
def test_rnn(type_name, data):
    rank = rank_of(data, [2], [1, 3])
    x = data.draw(sizes(rank, 1, 6), label="sample")
    hidden = data.draw(st.integers(1, 8), label="hidden_size")
    kwargs: dict[str, Any] = {"input_size": near(data, x[-1], "input_size"),
                              "hidden_size": hidden}
    optional(data, kwargs, "num_layers", st.integers(1, 3))
    if type_name == "RNN":
        optional(data, kwargs, "nonlinearity", st.sampled_from(["tanh", "relu", "sigmoid"]))
    optional(data, kwargs, "bias", BOOL)
    optional(data, kwargs, "batch_first", st.sampled_from([True, True, False]))
    optional(data, kwargs, "dropout", PROB)
    optional(data, kwargs, "bidirectional", BOOL)
    if type_name == "LSTM":
        optional(data, kwargs, "proj_size",
                 st.sampled_from(sorted({0, 1, hidden - 1, hidden, hidden + 1})))
    check(data, type_name, kwargs, x)


@settings(max_examples=examples(50))
@given(data=st.data())
def test_transformer_encoder_layer(data):
    rank = rank_of(data, [2], [1, 3])
    x = data.draw(sizes(rank, 1, 6), label="sample")
    kwargs: dict[str, Any] = {"d_model": near(data, x[-1], "d_model"),
                              "nhead": data.draw(st.one_of(
                                  st.sampled_from([h for h in range(1, 5) if x[-1] % h == 0]),
                                  st.integers(1, 4)), label="nhead")}
    optional(data, kwargs, "dim_feedforward", st.one_of(st.integers(1, 16), st.just(2048)))
    optional(data, kwargs, "dropout", PROB)
    optional(data, kwargs, "activation", st.sampled_from(["relu", "gelu", "tanh"]))
    optional(data, kwargs, "layer_norm_eps", FLOATS)
    optional(data, kwargs, "batch_first", st.sampled_from([True, True, False]))
    optional(data, kwargs, "norm_first", BOOL)
    optional(data, kwargs, "bias", BOOL)
    check(data, "TransformerEncoderLayer", kwargs, x)


def test_every_layer_type_of_these_families_is_fuzzed():
    fuzzed = (set(ELEMENTWISE_ARGS) | set(DROPOUTS) | {
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
        "InstanceNorm3d", "LayerNorm", "RMSNorm", "GroupNorm", "LocalResponseNorm", "Hardtanh",
        "Softshrink", "Hardshrink", "PReLU", "Softmax", "LogSoftmax", "Softmin", "Softmax2d",
        "GLU", "Linear", "Identity", "Embedding", "Flatten", "Unflatten", "Upsample",
        "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
        "ChannelShuffle", "RNN", "LSTM", "GRU", "TransformerEncoderLayer"}
        | {"StochasticDepth"}  # tests/ops/test_op_stochastic_depth.py
        | {"LayerNorm2d"}  # tests/ops/test_op_layer_norm_2d.py
        | {"RNNCell", "GRUCell", "LSTMCell"}  # tests/ops/test_op_cells.py
        | {"RNNCellLoop", "GRUCellLoop", "LSTMCellLoop"}  # tests/ops/test_op_cell_loop.py
        | {"TransformerDecoderLayer"}  # tests/ops/test_op_decoder.py
        | {"Interpolate"}  # a function op: tests/ops/test_op_interpolate.py
        | {"Unfold"}  # tests/ops/test_op_unfold.py
        | {"UnflattenAs"})  # a function op: tests/ops/test_op_unflatten_as.py
    mine = {name for name, lt in REGISTRY.items() if lt.rule.__module__ in MODULES}
    assert mine <= fuzzed, f"layer types without a differential test: {sorted(mine - fuzzed)}"


# ------------------------------------------------------------------ deliberate deviations

DELIBERATE_EXAMPLES = {
    "sequence layer on a 1-d sample": [
        ("LSTM", {"input_size": 4, "hidden_size": 3, "batch_first": True}, (4,)),
        ("TransformerEncoderLayer", {"d_model": 4, "nhead": 2, "dim_feedforward": 8,
                                     "batch_first": True}, (4,))],
    "instance norm without a channel dimension": [
        ("InstanceNorm1d", {"num_features": 3}, (5,)),
        ("InstanceNorm2d", {"num_features": 1}, (4, 4))],
    "Softmax2d on a 2-d sample": [("Softmax2d", {}, (4, 4))],
    "pixel shuffle on a 2-d sample": [("PixelShuffle", {"upscale_factor": 1}, (4, 4)),
                                      ("PixelUnshuffle", {"downscale_factor": 1}, (4, 4))],
    "2d upsampling alias on a non-image sample": [
        ("UpsamplingNearest2d", {"scale_factor": 2}, (3, 4)),
        ("UpsamplingNearest2d", {"scale_factor": 2}, (1, 2, 3, 4))],
    "Identity with arguments": [("Identity", {"in_features": 4}, (4,))],
}


@pytest.mark.parametrize("key", sorted(DELIBERATE))
def test_deliberate_deviation(key):
    """Each listed deviation is real (torch accepts) and netspec refuses it clearly."""
    assert set(DELIBERATE_EXAMPLES) == set(DELIBERATE)
    for type_name, kwargs, sample in DELIBERATE_EXAMPLES[key]:
        assert deliberate(type_name, kwargs, sample)[0] == key
        assert torch_verdict(type_name, kwargs, sample).ok, (type_name, kwargs, sample)
        got = netspec_verdict(type_name, kwargs, sample)
        assert not got.ok
        if key != "Identity with arguments":
            assert f"got {fmt(sample)}" in got.why, got.why  # names the shape it got
        assert deliberate(type_name, kwargs, sample)[1] in got.why, got.why


# ------------------------------------------------------------------ warnings


def _warnings(text: str) -> list[str]:
    result = netspec.check(text)
    assert result.ok, [d.message for d in result.errors]
    return [d.message for d in result.warnings]


def test_linear_on_feature_map_warns_to_flatten():
    text = ("netspec: 1\ninput: [3, 8, 8]\nlayers:\n"
            "  - Conv2d: {out_channels: 4, kernel_size: 3}\n"
            "  - Linear: {out_features: 10}\n")
    warnings = [w for w in _warnings(text) if "Flatten" in w]
    assert len(warnings) == 1, _warnings(text)
    assert "4×6×6" in warnings[0] and "144" in warnings[0], warnings[0]
    # the same with a Flatten, and Linear on L×features sequences: no warning
    flat = text.replace("  - Linear", "  - Flatten\n  - Linear")
    assert not [w for w in _warnings(flat) if "Flatten" in w]
    seq = spec_text("Linear", {"out_features": 3}, (5, 4))
    assert not [w for w in _warnings(seq) if "Flatten" in w]


# Cases torch accepts (often with a warning of its own) that netspec accepts with a warning.
WARNED = [
    ("Softmax", {}, (4, 5), "without dim"),
    ("Softmax", {"dim": 0}, (4,), "across the batch"),
    ("BatchNorm1d", {"num_features": 3, "affine": False, "track_running_stats": False}, (4, 5),
     "ignores it"),
    ("InstanceNorm1d", {"num_features": 3}, (4, 5), "ignores it"),
    ("GroupNorm", {"num_groups": 2, "num_channels": 6, "affine": False}, (4, 5), "ignores it"),
    ("Dropout1d", {}, (6,), "zeroes whole samples"),
    ("Dropout2d", {}, (3, 5), "Dropout1d"),
    ("Dropout2d", {}, (6,), "deprecated"),
    ("Dropout3d", {}, (3, 4, 4), "zeroes whole samples"),
    ("RNN", {"input_size": 4, "hidden_size": 3}, (5, 4), "batch_first"),
    ("GRU", {"input_size": 4, "hidden_size": 3, "dropout": 0.5, "batch_first": True}, (5, 4),
     "num_layers 1"),
    ("TransformerEncoderLayer", {"d_model": 4, "nhead": 2, "dim_feedforward": 8}, (5, 4),
     "batch_first"),
    ("Flatten", {"start_dim": 0, "end_dim": 1}, (1, 4), "size"),
    ("LeakyReLU", {"negative_slope": -0.1, "inplace": True}, (4,), "backward"),
    ("ELU", {"alpha": -1.0, "inplace": True}, (4,), "backward"),
    ("CELU", {"alpha": -1.0, "inplace": True}, (4,), "backward"),
]


@pytest.mark.parametrize("type_name,kwargs,sample,fragment", WARNED)
def test_accepted_with_a_warning(type_name, kwargs, sample, fragment):
    assert_agree(type_name, kwargs, sample)
    warnings = _warnings(spec_text(type_name, kwargs, sample))
    assert any(fragment in w for w in warnings), warnings


# ------------------------------------------------------------------ signatures

SKIPPED_PARAMS = {"self", "device", "dtype", "_weight", "_freeze"}
DEPRECATED_PARAMS = {("Hardtanh", "min_value"), ("Hardtanh", "max_value")}
# a class argument no spec can write: netspec builds the default, checked to be nn.LayerNorm
DEFAULT_CLASS_PARAMS = {("PatchMerging", "norm_layer"), ("PatchMergingV2", "norm_layer")}
RNN_ATTRIBUTES = {"input_size": 5, "hidden_size": 7, "num_layers": 2, "nonlinearity": "relu",
                  "bias": False, "batch_first": True, "dropout": 0.25, "bidirectional": True,
                  "proj_size": 3}


def _same_default(ours: Any, theirs: Any) -> bool:
    if callable(theirs):  # TransformerEncoderLayer's activation=F.relu
        return ours == theirs.__name__
    if isinstance(theirs, float) or isinstance(ours, float):
        return theirs is not None and ours is not None and math.isclose(ours, theirs)
    return ours == theirs and type(ours) is type(theirs)


@pytest.mark.filterwarnings("ignore:dropout option adds dropout")  # RNN dropout, 1 layer
@pytest.mark.parametrize("type_name",  # module ops: their arguments are a constructor's
                         sorted(n for n, lt in REGISTRY.items() if lt.torch.module))
def test_arguments_match_torch_signature(type_name):
    lt = REGISTRY[type_name]
    cls = torch_class(type_name)  # torch.nn's, or torchvision's StochasticDepth
    if type_name in ("RNN", "LSTM", "GRU"):
        # torch takes *args: check the documented order by constructing positionally, each
        # argument in turn set to a value different from its default and from its neighbours'
        required = {"input_size": 2, "hidden_size": 9}
        base = [required.get(a.name, a.default) for a in lt.positional]
        for i, arg in enumerate(lt.positional):
            values = list(base)
            values[i] = RNN_ATTRIBUTES[arg.name]
            module = cls(*values)
            for other, value in zip(lt.positional, values, strict=True):
                assert getattr(module, other.name) == value, (type_name, arg.name, other.name)
        bare = cls(input_size=2, hidden_size=3)
        for arg in lt.args:
            if arg.default is not REQUIRED:
                assert _same_default(arg.default, getattr(bare, arg.name)), (type_name, arg.name)
        return
    signature = inspect.signature(cls.__init__).parameters
    for name in (n for t, n in DEFAULT_CLASS_PARAMS if t == type_name):
        assert signature[name].default is torch_class("LayerNorm"), (type_name, name)
    params = [p for p in signature.values()
              if p.name not in SKIPPED_PARAMS and (type_name, p.name) not in DEPRECATED_PARAMS
              and (type_name, p.name) not in DEFAULT_CLASS_PARAMS
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    theirs = [p.name for p in params if p.kind != p.KEYWORD_ONLY]
    assert [a.name for a in lt.positional] == theirs, type_name
    assert ({a.name for a in lt.args if a.keyword_only}
            == {p.name for p in params if p.kind == p.KEYWORD_ONLY}), type_name
    for p in params:
        arg = lt.arg_by_name[p.name]
        if p.default is p.empty:
            assert arg.default is REQUIRED, (type_name, p.name, arg.default)
        else:
            assert arg.default is not REQUIRED, (type_name, p.name)
            assert _same_default(arg.default, p.default), (type_name, p.name, arg.default,
                                                           p.default)
