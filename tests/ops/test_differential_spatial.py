"""Differential tests of the spatial layer types against PyTorch: every convolution,
transposed convolution, pool and padding layer, 1d/2d/3d.

PyTorch is the truth (``tests/oracle.py``): hypothesis draws argument sets and sample
shapes, valid and invalid ones, in every form a spec can write them (keywords with the
inferable ``in_channels`` left out, given matching or given mismatching; PyTorch's
positional list; the scalar form), and netspec must agree with torch on accept/refuse, on
the output shape and on the parameter count.

Where netspec is deliberately stricter than torch, ``DELIBERATE`` says why; such draws
assert that netspec refuses with a message naming the problem instead of comparing.
Run with ``--hypothesis-show-statistics`` to see how the draws split (both accept, both
refuse, deliberate).
"""

from __future__ import annotations

import pytest
from conftest import examples
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from oracle import assert_agree, netspec_verdict, torch_verdict

from netspec.ops import REGISTRY

CONV = [f"{kind}{n}d" for kind in ("Conv", "ConvTranspose") for n in (1, 2, 3)]
POOL = [
    f"{kind}{n}d"
    for kind in ("MaxPool", "AvgPool", "LPPool", "AdaptiveAvgPool", "AdaptiveMaxPool")
    for n in (1, 2, 3)
]
PAD = [
    f"{kind}Pad{n}d"
    for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
    for n in (1, 2, 3)
]
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
INF, NAN = float("inf"), float("nan")

# netspec refuses these although PyTorch (sometimes) runs them.  Key -> why; the draws
# that hit one assert netspec's refusal and that its message contains DELIBERATE_SAYS[key].
DELIBERATE = {
    "integer input to a pool": (
        "Pooling integer tensors (token ids) is a bug in a network: ids only make sense as "
        "Embedding input.  PyTorch's support is patchy anyway (MaxPool2d/3d, AvgPool and "
        "LPPool run on int64 on CPU, MaxPool1d and the adaptive average pools do not), so "
        "netspec asks for a floating-point input."
    ),
    "circular pad wraps past the crop": (
        "CircularPad with a negative padding on one side and a positive one on the other "
        "wraps around the cropped input: when the wrap is longer than what the crop leaves "
        "(e.g. padding (-1, 1) on size 1, or (-2, 2) on size 3), PyTorch copies overlapping "
        "or uninitialised memory.  It raises for batch 1 (contiguous slices overlap) and "
        "returns garbage for larger batches; netspec refuses."
    ),
    "constant pad shifts the batch": (
        "ZeroPad2d/ConstantPad2d on a sample with one dim fewer than n pads the batch with "
        "the pair meant for the missing dim.  The oracle only sees the batch size, which a "
        "pair like (1, -1) keeps: but every sample then moves into the next one's place "
        "(the first becomes the constant).  netspec accepts only a zero pair there (which "
        "leaves the batch alone) and refuses the rest, as PyTorch does when the batch size "
        "changes."
    ),
    "bool for a number": (
        "YAML true/false where a size, count or number belongs (kernel_size: true, "
        "divisor_override: false, norm_type: true): PyTorch takes them as 1/0 because bool "
        "subclasses int; in a spec it is a typo, and the schema's integer/number types "
        "refuse it."
    ),
    "string for a number": (
        "A quoted number (norm_type: '2'): LPPool's forward calls float() on norm_type, so "
        "PyTorch reads any numeric string; in YAML the quotes are a mistake, and the "
        "schema's number type refuses it."
    ),
    "non-boolean for a flag": (
        "0/1, a string or null for a boolean flag (bias: 0, ceil_mode: 'yes', an empty "
        "'bias:'): PyTorch only tests truthiness; netspec asks for true/false."
    ),
    "list of the wrong length": (
        "A list whose length does not match the layer's dimensionality: PyTorch broadcasts "
        "a one-element list for a pair/triple (Conv2d stride [2], MaxPool2d kernel_size "
        "[3]) and lets ZeroPad2d/ConstantPad2d take 2 or 6 numbers (padding fewer or more "
        "dims than the layer's name says).  netspec wants one integer for every dim or a "
        "list of exactly n (2n for padding layers)."
    ),
}
DELIBERATE_SAYS = {  # any one of these
    "integer input to a pool": ("needs a floating-point input",),
    "circular pad wraps past the crop": ("wrap",),
    "constant pad shifts the batch": ("would apply to the batch dimension",),
    "bool for a number": ("got true", "got false"),
    "string for a number": ("must be a number",),
    "non-boolean for a flag": ("must be true or false",),
    "list of the wrong length": ("must have exactly",),
}


def dims(type_name: str) -> int:
    return int(type_name[-2])


def spatial_max(n: int) -> int:
    return 6 if n == 3 else 12


def small(hi: int) -> st.SearchStrategy[int]:
    """1..hi, tiny sizes (1..3) drawn often."""
    return st.one_of(st.integers(1, 3), st.integers(1, hi))


def size_arg(n: int, lo: int, hi: int) -> st.SearchStrategy:
    """An int or a list of n ints, as a YAML spec writes a _pair/_triple argument."""
    one = st.integers(lo, hi)
    return st.one_of(one, st.lists(one, min_size=n, max_size=n))


def positional(type_name: str, kwargs: dict) -> list:
    """``kwargs`` as PyTorch's positional list (defaults filled in up to the last one given)."""
    lt = REGISTRY[type_name]
    names = [a.name for a in lt.positional]
    last = max(names.index(k) for k in kwargs)
    return [
        kwargs[name] if name in kwargs else lt.arg_by_name[name].default
        for name in names[: last + 1]
    ]


def draw_form(draw, type_name: str, torch_kwargs: dict, netspec_kwargs: dict):
    """The netspec form of the arguments: keywords, positional list or scalar."""
    if netspec_kwargs != torch_kwargs:  # an inferable argument is left out: keywords only
        return netspec_kwargs
    form = draw(st.sampled_from(["keywords", "keywords", "positional", "scalar"]))
    first = REGISTRY[type_name].positional[0].name
    if (
        form == "scalar"
        and list(torch_kwargs) == [first]
        and not isinstance(torch_kwargs[first], list)
    ):
        return torch_kwargs[first]
    if form in ("positional", "scalar"):
        return positional(type_name, torch_kwargs)
    return netspec_kwargs


def draw_sample(draw, n: int, ranks: list[int], lead_max: int = 8) -> tuple[int, ...]:
    """A sample whose last n dims are spatial (small) and whose leading dims are channels."""
    rank = draw(st.sampled_from(ranks))
    lead = max(rank - n, 0)
    head = draw(st.lists(st.integers(1, lead_max), min_size=lead, max_size=lead))
    tail = draw(st.lists(small(spatial_max(n)), min_size=rank - lead, max_size=rank - lead))
    return (*head, *tail)


def check(
    type_name: str,
    torch_kwargs: dict,
    sample: tuple[int, ...],
    netspec_args="same",
    dtype: str = "float32",
) -> None:
    """The differential check; for a deliberate deviation that torch runs, netspec's clear
    refusal instead."""
    key = deliberate(type_name, torch_kwargs, sample, dtype)
    if key is None:
        expected, _ = assert_agree(type_name, torch_kwargs, sample, dtype, netspec_args)
        event("both accept" if expected.ok else "both refuse")
        return
    expected = torch_verdict(type_name, torch_kwargs, sample, dtype)
    got = netspec_verdict(
        type_name, torch_kwargs if netspec_args == "same" else netspec_args, sample, dtype
    )
    context = f"{type_name}({torch_kwargs}) on {sample} ({dtype}): torch {expected}, netspec {got}"
    assert not got.ok, f"deliberate refusal ({key}) but netspec accepts: {context}"
    if expected.ok:
        assert says(key, got.why), f"{key}: {context}"
        event(f"deliberate: {key}")
    else:
        event("both refuse")


def deliberate(type_name: str, kwargs: dict, sample: tuple[int, ...], dtype: str) -> str | None:
    lt = REGISTRY[type_name]
    if lt.family == "pool" and dtype in ("int64", "int32"):
        return "integer input to a pool"
    n = dims(type_name)
    if type_name.startswith("CircularPad"):
        if len(sample) in (n, n + 1) and _circular_overcrop(kwargs["padding"], sample, n):
            return "circular pad wraps past the crop"
    if type_name.startswith(("ZeroPad", "ConstantPad")) and len(sample) == n - 1:
        lo, hi = _pairs(kwargs["padding"], n)[0]  # the pair that lands on the batch
        if lo and lo + hi == 0:
            return "constant pad shifts the batch"
    return None


def _pairs(padding, n: int) -> list[tuple[int, int]]:
    """(before, after) per padded dim, first spatial dim first (PyTorch lists the last first)."""
    if isinstance(padding, int):
        return [(padding, padding)] * n
    return [(padding[2 * i], padding[2 * i + 1]) for i in range(n)][::-1]


def _circular_overcrop(padding, sample: tuple[int, ...], n: int) -> bool:
    """PyTorch's own circular checks pass (each pad <= size, output >= 1) but some dim wraps
    more elements than its crop leaves."""
    over = False
    for size, (lo, hi) in zip(sample[-n:], _pairs(padding, n), strict=True):
        if lo > size or hi > size or size + lo + hi < 1:
            return False  # PyTorch refuses this itself: an ordinary comparison
        kept = size + min(lo, 0) + min(hi, 0)
        over |= kept < 1 or lo > kept or hi > kept
    return over


# ------------------------------------------------------------------ strategies


@st.composite
def conv_cases(draw, type_name: str):
    n, transposed = dims(type_name), "Transpose" in type_name
    groups = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    channels = st.one_of(st.integers(1, 8 // groups).map(lambda m: m * groups), st.integers(1, 8))
    c, out = draw(channels), draw(channels)
    # mostly C×spatial; sometimes one dim too few (a 2-d sample into Conv2d) or too many
    sample = draw_sample(draw, n, [n + 1] * 10 + [n, n + 2])
    sample = (c, *sample[1:]) if len(sample) == n + 1 else sample
    kw: dict = {"out_channels": out, "kernel_size": draw(size_arg(n, 1, 4 if n == 3 else 5))}
    if draw(st.booleans()):
        kw["stride"] = draw(size_arg(n, 1, 3))
    if draw(st.booleans()):
        plain = size_arg(n, 0, 4)
        kw["padding"] = draw(
            plain if transposed else st.one_of(plain, st.sampled_from(["same", "valid"]))
        )
    if transposed and draw(st.booleans()):
        kw["output_padding"] = draw(size_arg(n, 0, 3))
    if draw(st.booleans()):
        kw["dilation"] = draw(size_arg(n, 1, 3))
    if groups != 1 or draw(st.booleans()):
        kw["groups"] = groups
    if draw(st.booleans()):
        kw["bias"] = draw(st.booleans())
    if draw(st.integers(0, 3 if transposed else 1)) == 0:
        kw["padding_mode"] = draw(st.sampled_from(PADDING_MODES))
    actual = sample[0]
    how = draw(st.sampled_from(["omit", "omit", "match", "mismatch"]))
    written = actual if how != "mismatch" else draw(st.integers(1, 8).filter(lambda v: v != actual))
    torch_kw = {"in_channels": written, **kw}
    netspec_args = kw if how == "omit" else draw_form(draw, type_name, torch_kw, torch_kw)
    return torch_kw, sample, netspec_args


@st.composite
def pool_cases(draw, type_name: str):
    n = dims(type_name)
    kind = type_name[:-2]
    ranks = [n + 1] * 8 + [n] * 3 + ([n - 1] if n > 1 else []) + [n + 2]
    sample = draw_sample(draw, n, ranks)
    dtype = draw(st.sampled_from(["float32"] * 10 + ["float64", "int64"]))
    kernel = size_arg(n, 1, 4 if n == 3 else 5)
    stride = st.one_of(st.none(), size_arg(n, 1, 3))
    kw: dict = {}
    if kind.startswith("Adaptive"):
        entry = st.integers(1, 8)
        kw["output_size"] = draw(
            st.one_of(entry, st.lists(st.one_of(entry, st.none()), min_size=n, max_size=n))
        )
        if kind == "AdaptiveMaxPool" and draw(st.booleans()):
            kw["return_indices"] = draw(st.sampled_from([False, False, True]))
    elif kind == "LPPool":
        kw["norm_type"] = draw(
            st.sampled_from([1, 2, 2.0, 3, 1.5, 0.5, -1, 0, 0.0, INF, NAN, -INF])
        )
        kw["kernel_size"] = draw(kernel)
        if draw(st.booleans()):
            kw["stride"] = draw(stride)
        if draw(st.booleans()):
            kw["ceil_mode"] = draw(st.booleans())
    else:
        kw["kernel_size"] = draw(kernel)
        if draw(st.booleans()):
            kw["stride"] = draw(stride)
        if draw(st.booleans()):
            kw["padding"] = draw(size_arg(n, 0, 3))
        if kind == "MaxPool":
            if draw(st.booleans()):
                kw["dilation"] = draw(size_arg(n, 1, 3))
            if draw(st.booleans()):
                kw["return_indices"] = draw(st.sampled_from([False, False, True]))
        if draw(st.booleans()):
            kw["ceil_mode"] = draw(st.booleans())
        if kind == "AvgPool":
            if draw(st.booleans()):
                kw["count_include_pad"] = draw(st.booleans())
            if n > 1 and draw(st.booleans()):
                kw["divisor_override"] = draw(st.one_of(st.none(), st.just(0), st.integers(-3, 9)))
    return kw, sample, draw_form(draw, type_name, kw, kw), dtype


@st.composite
def pad_cases(draw, type_name: str):
    n = dims(type_name)
    ranks = [n + 1] * 6 + [n] * 3 + [n - 1 if n > 1 else n + 2, n + 2]
    sample = draw_sample(draw, n, ranks)
    kw: dict = {
        "padding": draw(
            st.one_of(
                st.integers(-2, 6), st.lists(st.integers(-3, 6), min_size=2 * n, max_size=2 * n)
            )
        )
    }
    if type_name.startswith("Constant"):
        kw["value"] = draw(st.sampled_from([0, 0.0, 1.5, -2]))
    dtype = draw(st.sampled_from(["float32"] * 6 + ["float64", "float16", "int64", "int32"]))
    return kw, sample, draw_form(draw, type_name, kw, kw), dtype


# ------------------------------------------------------------------ the differential tests


def test_every_spatial_layer_type_is_covered():
    # the function ops of these families (Pad, Mean, ...) and the classes that are not
    # torch.nn's (timm's StdConv2d, ScaledStdConv2d: tests/ops/test_op_std_conv.py, against
    # timm's modules) have their own tests/ops/test_op_*.py
    spatial = {name for name, lt in REGISTRY.items()
               if lt.family in ("conv", "pool", "padding") and lt.torch.module
               and lt.torch.target.startswith("torch.nn.")}
    assert spatial == set(CONV + POOL + PAD)


@pytest.mark.fuzz
@pytest.mark.parametrize("type_name", CONV)
@settings(max_examples=examples(60))
@given(data=st.data())
def test_conv_agrees_with_torch(type_name, data):
    torch_kw, sample, netspec_args = data.draw(conv_cases(type_name))
    check(type_name, torch_kw, sample, netspec_args)


@pytest.mark.fuzz
@pytest.mark.parametrize("type_name", POOL)
@settings(max_examples=examples(40))
@given(data=st.data())
def test_pool_agrees_with_torch(type_name, data):
    kw, sample, netspec_args, dtype = data.draw(pool_cases(type_name))
    check(type_name, kw, sample, netspec_args, dtype)


@pytest.mark.fuzz
@pytest.mark.parametrize("type_name", PAD)
@settings(max_examples=examples(30))
@given(data=st.data())
def test_padding_agrees_with_torch(type_name, data):
    kw, sample, netspec_args, dtype = data.draw(pad_cases(type_name))
    check(type_name, kw, sample, netspec_args, dtype)


# ------------------------------------------------------------------ values the schema refuses


def bad_values(type_name: str, arg: str) -> list:
    """Values the JSON schema refuses for ``arg``: zero/negative sizes, floats, booleans,
    strings, lists of the wrong length, unknown enum values."""
    lt = REGISTRY[type_name]
    schema = lt.arg_by_name[arg].type.schema
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "enum" in schema:
        return ["zero", "Zeros", 0, True]
    if types == ["boolean"]:
        return [1, 0, "yes", None]
    if types == ["number"] or types == ["number", "null"]:
        return [True, False, "2"]
    values: list = [True, False, 2.0, 1.5, "3"]
    if schema.get("minimum", -1) >= 0:
        values += [-1]
    if schema.get("minimum", -1) >= 1:
        values += [0]
    if "array" in types:
        length = schema["minItems"]
        lists = [[1], [], [1] * (length + 1)]
        if REGISTRY[type_name].family == "padding":  # the 2n-list of another dimensionality
            lists += [[1] * 2, [1] * 4, [1] * 6]
        values += [v for v in lists if len(v) != length] + [[2.0] * length, [True] * length]
    return values


def schema_deviation(lt, arg: str, bad) -> str | None:
    """The DELIBERATE key that allows PyTorch to accept ``bad`` for ``arg``, if any."""
    schema = lt.arg_by_name[arg].type.schema
    if isinstance(bad, bool) or (isinstance(bad, list) and bad and isinstance(bad[0], bool)):
        return "bool for a number"
    if isinstance(bad, str) and schema.get("type") in ("number", ["number", "null"]):
        return "string for a number"
    if schema.get("type") == "boolean":
        return "non-boolean for a flag"
    if isinstance(bad, list) and len(bad) not in (schema.get("minItems"), None):
        return "list of the wrong length"
    return None


def says(key: str, why: str) -> bool:
    return any(words in why for words in DELIBERATE_SAYS[key])


@st.composite
def schema_refused_cases(draw):
    """A case torch runs, with one argument replaced by a value the schema refuses."""
    type_name = draw(st.sampled_from(CONV + POOL + PAD))
    if type_name in CONV:
        kw, sample, _ = draw(conv_cases(type_name))
    else:
        kw, sample, _, _ = draw((pool_cases if type_name in POOL else pad_cases)(type_name))
    assume(torch_verdict(type_name, kw, sample).ok)  # then only the bad value is wrong
    arg = draw(st.sampled_from([a.name for a in REGISTRY[type_name].args]))
    bad = draw(st.sampled_from(bad_values(type_name, arg)))
    return type_name, {**kw, arg: bad}, sample, arg, bad


@pytest.mark.fuzz
@settings(max_examples=examples(120))
@given(case=schema_refused_cases())
def test_schema_refusals_are_refused_by_torch_or_deliberate(case):
    type_name, kw, sample, arg, bad = case
    got = netspec_verdict(type_name, kw, sample)
    assert not got.ok, f"schema should refuse {type_name} {arg}={bad!r}: {got}"
    assert arg in got.why, got.why  # the message names the argument
    expected = torch_verdict(type_name, kw, sample)
    if not expected.ok:
        event("schema refuses, torch refuses")
        return
    key = schema_deviation(REGISTRY[type_name], arg, bad)
    assert key is not None, (
        f"{type_name}({kw}) on {sample}: torch {expected}, but the "
        f"schema refuses {arg}={bad!r} and DELIBERATE does not say why"
    )
    assert says(key, got.why), (key, got.why)
    event(f"deliberate: {key}")


# ------------------------------------------------------------------ pinned edge cases
# Each expected number was checked with torch (and assert_agree checks it again).


def as_kwargs(type_name: str, args, sample: tuple[int, ...]) -> dict:
    """Any spec form of the arguments as the keywords torch gets, inferable ones filled in."""
    lt = REGISTRY[type_name]
    if isinstance(args, list):
        kw = dict(zip([a.name for a in lt.positional], args, strict=False))
    elif isinstance(args, dict):
        kw = dict(args)
    else:
        kw = {lt.positional[0].name: args}
    for a in lt.args:
        if a.infer is not None and a.name not in kw:
            kw[a.name] = a.infer(sample)
    return kw


def pinned(type_name: str, args, sample: tuple[int, ...]):
    """netspec's verdict on ``args``, after checking it agrees with torch."""
    assert_agree(type_name, as_kwargs(type_name, args, sample), sample, netspec_args=args)
    return netspec_verdict(type_name, args, sample)


@pytest.mark.parametrize(
    "type_name, args, sample, shape",
    [
        # GoogLeNet's pools: ceil_mode rounds up, 112 -> 56 (floor would give 55)
        (
            "MaxPool2d",
            {"kernel_size": 3, "stride": 2, "ceil_mode": True},
            (64, 112, 112),
            (64, 56, 56),
        ),
        ("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (1, 6, 6), (1, 3, 3)),
        ("MaxPool2d", {"kernel_size": 3, "stride": 2}, (1, 6, 6), (1, 2, 2)),
        # the last-window rule: ceil would give 4 windows, the 4th starts in the right padding
        (
            "MaxPool1d",
            {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
            (1, 5),
            (1, 3),
        ),
        ("AvgPool2d", [2, 2, 1, True], (3, 5, 5), (3, 3, 3)),
        # stride null is the kernel size; dilation widens the window
        ("MaxPool2d", {"kernel_size": 2, "stride": None, "dilation": 2}, (2, 7, 7), (2, 3, 3)),
        # the unbatched form: an H×W sample (the batch read as channels by torch)
        ("MaxPool2d", 2, (6, 6), (3, 3)),
        ("AdaptiveAvgPool2d", {"output_size": [None, 3]}, (4, 5, 7), (4, 5, 3)),
        ("AdaptiveMaxPool3d", 2, (3, 1, 5, 5), (3, 2, 2, 2)),
        # LPPool with norm_type inf is a max pool: no AvgPool3d input-vs-kernel check
        (
            "LPPool3d",
            {"norm_type": INF, "kernel_size": 3, "ceil_mode": True},
            (2, 2, 4, 4),
            (2, 1, 2, 2),
        ),
        ("ReflectionPad1d", 2, (4, 3), (4, 7)),
        ("CircularPad1d", 3, (4, 3), (4, 9)),
        ("CircularPad1d", {"padding": [-1, 2]}, (4, 3), (4, 4)),
        ("ReplicationPad2d", {"padding": [-1, 0, 4, 4]}, (1, 2, 3), (1, 10, 2)),
        ("ConstantPad2d", {"padding": [1, 1, 2, 0], "value": 3.5}, (3, 4, 4), (3, 6, 6)),
        ("ZeroPad2d", {"padding": [0, 0, -1, -1]}, (3, 4, 4), (3, 2, 4)),
        # constant padding of a sample one dim short: the batch's pair must be zero
        ("ZeroPad2d", {"padding": [1, 2, 0, 0]}, (5,), (8,)),
        ("ConstantPad3d", {"padding": [1, 1, 0, 0, 0, 0], "value": 1}, (2, 5), (2, 7)),
        ("ConstantPad1d", {"padding": [2, -1], "value": 1}, (1, 1), (1, 2)),  # crop all, pad 2
        # AdaptiveAvgPool2d(1) is a mean over the last two dims of any input
        ("AdaptiveAvgPool2d", 1, (2, 3, 4, 4), (2, 3, 1, 1)),
        ("LPPool1d", {"norm_type": INF, "kernel_size": [2]}, (1, 4), (1, 2)),
    ],
)
def test_pinned_shapes(type_name, args, sample, shape):
    got = pinned(type_name, args, sample)
    assert got.ok and got.shape == shape, got


@pytest.mark.parametrize(
    "type_name, args, sample, shape, params",
    [
        # the classic 2× upsampling transposed conv: (7-1)*2 - 2 + 3 + 1 = 14
        (
            "ConvTranspose2d",
            {"out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
            (16, 7, 7),
            (8, 14, 14),
            16 * 8 * 9 + 8,
        ),
        # output_padding >= stride is fine while it is < dilation: (5-1) + 2*2 + 1 + 1 = 10
        (
            "ConvTranspose1d",
            {"out_channels": 2, "kernel_size": 3, "dilation": 2, "output_padding": 1},
            (4, 5),
            (2, 10),
            4 * 2 * 3 + 2,
        ),
        # grouped transposed conv: weight in × out/groups × k
        (
            "ConvTranspose2d",
            {
                "in_channels": 4,
                "out_channels": 6,
                "kernel_size": 2,
                "stride": 2,
                "groups": 2,
                "bias": False,
            },
            (4, 3, 3),
            (6, 6, 6),
            4 * 3 * 4,
        ),
        # 'same' with an even kernel pads 1 left, 2 right (dilated 4 -> 3)
        (
            "Conv2d",
            {"out_channels": 3, "kernel_size": 4, "padding": "same"},
            (2, 5, 5),
            (3, 5, 5),
            3 * 2 * 16 + 3,
        ),
        (
            "Conv1d",
            {
                "out_channels": 3,
                "kernel_size": 2,
                "padding": "same",
                "dilation": 3,
                "padding_mode": "reflect",
            },
            (2, 4),
            (3, 4),
            3 * 2 * 2 + 3,
        ),
        ("Conv2d", [6, 4, 3, 1, 0, 1, 2], (6, 5, 5), (4, 3, 3), 4 * 3 * 9 + 4),
        (
            "Conv3d",
            {
                "out_channels": 2,
                "kernel_size": [1, 3, 3],
                "padding": [0, 1, 1],
                "padding_mode": "circular",
            },
            (1, 2, 3, 3),
            (2, 2, 3, 3),
            2 * 9 + 2,
        ),
    ],
)
def test_pinned_conv(type_name, args, sample, shape, params):
    got = pinned(type_name, args, sample)
    assert got.ok and (got.shape, got.params) == (shape, params), got


@pytest.mark.parametrize(
    "type_name, args, sample, words",
    [
        (
            "MaxPool2d",
            {"kernel_size": 2, "stride": 2},
            (1, 1, 1),
            ["output would be 0×0", "input 1×1", "kernel 2×2", "stride 2×2"],
        ),
        (
            "MaxPool2d",
            {"kernel_size": 3, "padding": 2},
            (1, 8, 8),
            ["padding 2×2", "half the kernel size 3×3"],
        ),
        (
            "AvgPool3d",
            {"kernel_size": 3, "padding": 1},
            (1, 2, 2, 2),
            ["input 2×2×2", "smaller than the kernel 3×3×3"],
        ),
        ("AvgPool2d", {"kernel_size": 2, "divisor_override": 0}, (1, 4, 4), ["divisor_override"]),
        ("LPPool2d", {"norm_type": 0, "kernel_size": 2}, (1, 4, 4), ["norm_type", "0"]),
        ("MaxPool1d", {"kernel_size": 2, "return_indices": True}, (1, 4), ["return_indices"]),
        (
            "Conv2d",
            {"out_channels": 4, "kernel_size": 5},
            (3, 4, 4),
            ["kernel 5×5", "padded input 4×4"],
        ),
        (
            "Conv2d",
            {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": "same"},
            (3, 8, 8),
            ["'same'", "stride 2×2"],
        ),
        (
            "Conv2d",
            {"out_channels": 4, "kernel_size": 3, "groups": 2},
            (3, 8, 8),
            ["in_channels 3", "groups 2"],
        ),
        (
            "Conv2d",
            {"in_channels": 4, "out_channels": 4, "kernel_size": 3},
            (3, 8, 8),
            ["in_channels 4", "3 channels"],
        ),
        ("Conv2d", {"out_channels": 4, "kernel_size": 3}, (8, 8), ["C×H×W", "8×8"]),
        (
            "Conv1d",
            {"out_channels": 4, "kernel_size": 3, "padding": 3, "padding_mode": "reflect"},
            (3, 3),
            ["reflect padding (3, 3)", "size 3"],
        ),
        (
            "ConvTranspose2d",
            {"out_channels": 2, "kernel_size": 3, "stride": 2, "output_padding": 2},
            (2, 4, 4),
            ["output_padding 2×2", "stride 2×2", "dilation 1×1"],
        ),
        (
            "ConvTranspose1d",
            {"out_channels": 2, "kernel_size": 1, "padding": 1},
            (2, 1),
            ["output would be -1", "input 1", "padding 1"],
        ),
        ("ReflectionPad1d", 3, (2, 3), ["reflect padding (3, 3)", "size 3"]),
        ("CircularPad1d", 4, (2, 3), ["circular padding (4, 4)", "size 3"]),
        ("ReplicationPad1d", {"padding": [-2, -1]}, (2, 3), ["(-2, -1)", "0 elements", "size 3"]),
        (
            "ConstantPad2d",
            {"padding": [0, 0, 2, -2], "value": 0},
            (1, 1, 1),
            ["(2, -2)", "crops 2", "size 1"],
        ),
        ("ZeroPad2d", {"padding": [1, 1, 1, 1]}, (5,), ["last 2 dims", "(1, 1)", "batch"]),
        ("LPPool1d", {"norm_type": 2, "kernel_size": [2]}, (1, 4), ["kernel_size", "integer"]),
        (
            "AdaptiveAvgPool2d",
            {"output_size": 2},
            (2, 3, 4, 4),
            ["C×H×W or H×W", "2×3×4×4", "output_size 2×2"],
        ),
    ],
)
def test_pinned_refusals(type_name, args, sample, words):
    got = pinned(type_name, args, sample)
    assert not got.ok
    for word in words:
        assert word in got.why, (word, got.why)


def test_pinned_deliberate_refusals():
    # circular wrap longer than the crop leaves: torch returns garbage for batch >= 2
    got = netspec_verdict("CircularPad1d", {"padding": [-1, 1]}, (2, 1))
    assert not got.ok and "wrap" in got.why, got
    assert torch_verdict("CircularPad1d", {"padding": [-1, 1]}, (2, 1)).ok
    # ZeroPad2d on an L sample: (1, -1) lands on the batch, which keeps its size but shifts
    got = netspec_verdict("ZeroPad2d", {"padding": [0, 0, 1, -1]}, (5,))
    assert not got.ok and "(1, -1) for the missing dim would apply to the batch" in got.why
    assert torch_verdict("ZeroPad2d", {"padding": [0, 0, 1, -1]}, (5,)).ok
    got = netspec_verdict("MaxPool2d", 2, (1, 4, 4), dtype="int64")
    assert not got.ok and "needs a floating-point input" in got.why, got
    got = netspec_verdict("Conv2d", {"out_channels": 2, "kernel_size": True}, (1, 4, 4))
    assert not got.ok and "kernel_size" in got.why and "true" in got.why, got
