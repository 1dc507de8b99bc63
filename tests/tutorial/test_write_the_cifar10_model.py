"""The tutorial's first model, the CIFAR-10 "Tudui" net, written as a student writes it:
the hand-computed `64*4*4`, a badly indented argument block, the batch in the input
shape, PyTorch's tuple syntax, a Softmax before CrossEntropyLoss (issue 13, points 1, 2, 8)."""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import netspec
from netspec.cli import main

TUDUI = """\
netspec: 1
name: Tudui
input: [3, 32, 32]
layers:
  - Conv2d: [3, 32, 5, 1, 2]
  - MaxPool2d: 2
  - Conv2d: [32, 32, 5, 1, 2]
  - MaxPool2d: 2
  - Conv2d: [32, 64, 5, 1, 2]
  - MaxPool2d: 2
  - Flatten
  - Linear: [{in_features}, 64]
  - Linear: [64, 10]
"""


def tudui(in_features: str) -> str:
    return TUDUI.format(in_features=in_features)


# ------------------------------------------------------------- 1. the tutorial's arithmetic

def test_the_hand_computed_in_features_is_accepted_and_shown_as_its_value():
    result = netspec.check(tudui("64*4*4"))
    assert result.ok, [d.format() for d in result.errors]
    fc1 = result.layers[7]
    assert fc1.kwargs["in_features"] == 1024 and fc1.params == 1024 * 64 + 64
    assert "65,600" in result.table() and "64*4*4" not in result.table()


def test_the_value_is_what_torch_gets():
    torch = pytest.importorskip("torch")
    model = netspec.build(tudui("64 * 4 * 4"))
    assert model[7].in_features == 1024
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_a_wrong_expression_names_its_value_and_what_comes_in(capsys):
    result = netspec.check(tudui("64*5*5"))
    (error,) = result.errors
    assert (error.line, error.col) == (12, 14)
    assert error.message == ("layer 7 (Linear): in_features 64*5*5 = 1600 does not match the "
                             "1024 features coming in (64×4×4 flattened at layer 6)")


def test_an_expression_that_is_not_a_whole_number_says_so():
    (error,) = netspec.check(tudui("64*4*4/3")).errors
    assert error.message == ("layer 7 (Linear): in_features must be a positive integer, "
                             "got 64*4*4/3 = 341.3333333333333")
    result = netspec.check(tudui("64*4*4*2/2"))  # a / that comes out whole is that number
    assert result.ok and result.layers[7].kwargs["in_features"] == 1024


def test_an_expression_that_cannot_be_computed_is_one_positioned_error():
    result = netspec.check(tudui("64*4*4/0"))
    assert [(e.line, e.col, e.message) for e in result.errors] == [
        (12, 14, "64*4*4/0 cannot be computed: division by zero")]


def test_arithmetic_in_the_input_shape_and_a_keyword_argument():
    spec = textwrap.dedent("""\
        netspec: 1
        input: [3, 16*2, 16*2]
        layers:
          - Conv2d: {out_channels: 2*16, kernel_size: 3, padding: 3//2}
          - Flatten
          - Linear: {in_features: 32*32*32, out_features: 10}
        """)
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    assert result.layers[0].input_shape == (3, 32, 32)
    assert result.layers[0].output_shape == (32, 32, 32)


def test_arithmetic_without_names_works_inside_a_block_too():
    spec = textwrap.dedent("""\
        netspec: 1
        input: [64, 4, 4]
        blocks:
          Head:
            params: {classes: 10}
            layers:
              - Flatten
              - Linear: [64*4*4, classes*2]
        layers:
          - Head: {classes: 5}
        """)
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    assert result.output_shape == (10,)


def test_arithmetic_in_a_block_s_defaults_and_in_the_blocks_it_uses():
    """A parameter's default (stride: 2//2) and a block used inside a body (Conv: {out:
    8/1}) are computed as at the top level, whole numbers, not passed on as text (found by
    the mutation fuzzer)."""
    import torch

    spec = textwrap.dedent("""\
        netspec: 1
        input: [3, 8, 8]
        blocks:
          Conv:
            params: {out: required, stride: 2//2}
            layers:
              - Conv2d: {out_channels: out, kernel_size: 3, stride: stride, padding: 1}
          Pair:
            params: {expand: 3 * 2}
            layers:
              - Conv: {out: 8/1}
              - Conv: {out: in_channels * expand, stride: 4/2}
        layers:
          - Pair
        """)
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    assert result.output_shape == (18, 4, 4)  # in_channels: the 3 coming into Pair
    model = netspec.build(result)
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 18, 4, 4)
    assert sum(p.numel() for p in model.parameters()) == result.total_params
    (error,) = netspec.check(spec.replace("8/1", "8/3")).errors
    assert "out_channels must be a positive integer" in error.message and "2.66" in error.message


def test_names_stay_strings_outside_blocks():
    spec = tudui("64*4*4").replace("  - Conv2d: [3, 32, 5, 1, 2]",
                                   "  - Conv2d: [3, 32, 5, 1, same]")
    result = netspec.check(spec)
    assert result.ok and result.layers[0].kwargs["padding"] == "same"
    (error,) = netspec.check(tudui("features*4")).errors  # not a parameter here
    assert 'in_features must be a positive integer, got "features*4"' in error.message


def test_the_cli_prints_the_value_in_the_table(tmp_path, capsys):
    path = tmp_path / "tudui.yaml"
    path.write_text(tudui("64*4*4"))
    assert main(["check", str(path)]) == 0
    assert "Linear" in capsys.readouterr().out


# arithmetic the way Python computes it: netspec's evaluator never calls eval, the test does
_numbers = st.integers(min_value=1, max_value=64).map(str)
_expressions = st.recursive(
    _numbers,
    lambda inner: st.tuples(inner, st.sampled_from(["+", "*", "//", "-"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    max_leaves=6,
)


@given(_expressions.filter(lambda text: text.startswith("(")))
def test_the_value_is_python_s(text):
    result = netspec.check(tudui(text))
    try:
        expected = eval(text, {"__builtins__": {}})  # the test's own expression
    except ZeroDivisionError:
        (error,) = result.errors
        assert error.message == f"{text} cannot be computed: division by zero"
        return
    if expected == 1024:
        assert result.ok
        return
    (error,) = result.errors
    if expected > 0:
        assert f"in_features {text} = {expected} does not match the 1024" in error.message
    else:
        assert error.message.endswith(f"got {text} = {expected}")


# ------------------------------------------- 2. an argument block not indented under its type

def test_arguments_at_the_entry_s_column_are_told_to_indent():
    spec = textwrap.dedent("""\
        netspec: 1
        input: [3, 32, 32]
        layers:
          - Conv2d:
            out_channels: 32
            kernel_size: 5
          - ReLU
        """)
    errors = netspec.check(spec).errors
    assert [(e.line, e.col) for e in errors] == [(5, 5), (6, 5)]
    assert errors[0].message == ("layer 0: out_channels is an argument of Conv2d, so it belongs "
                                 "under it: indent it to column 7, under Conv2d: (line 4)")
    assert "kernel_size is an argument of Conv2d" in errors[1].message
    fixed = spec.replace("    out_channels", "      out_channels").replace(
        "    kernel_size", "      kernel_size")
    assert netspec.check(fixed).ok  # the advice, followed, works


def test_a_misspelled_argument_at_the_entry_s_column_gets_both_hints():
    spec = "netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - Conv2d:\n    out_chanels: 4\n"
    (error, *_) = netspec.check(spec).errors
    assert "did you mean Conv2d's argument 'out_channels'?" in error.message
    assert "indent it to column 7, under Conv2d: (line 4)" in error.message


def test_a_key_that_is_no_argument_keeps_the_old_advice():
    spec = "netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4}\n"
    (error,) = netspec.check(spec).errors
    assert "layer types are CamelCase" in error.message or "unknown layer" in error.message


# --------------------------------------------------------- 8. messages that teach more

def test_the_batch_written_into_the_input_is_reported_at_input():
    spec = textwrap.dedent("""\
        netspec: 1
        input: [64, 3, 32, 32]
        layers:
          - Conv2d: [3, 32, 5, 1, 2]
        """)
    (error,) = netspec.check(spec).errors
    assert (error.line, error.col) == (2, 8)
    assert error.message.startswith(
        "input: [64, 3, 32, 32] has a batch dimension in it, as torch.ones(64, 3, 32, 32) "
        "has; netspec's input is one sample, the batch is implied: write input: [3, 32, 32]")
    torch = pytest.importorskip("torch")
    nn = torch.nn
    with pytest.raises(RuntimeError):  # torch refuses it too: a 5-D batch for Conv2d
        nn.Conv2d(3, 32, 5, 1, 2)(torch.ones(1, 64, 3, 32, 32))


def test_a_one_channel_input_without_its_channel_keeps_its_own_hint():
    spec = "netspec: 1\ninput: [28, 28]\nlayers:\n  - Conv2d: [1, 8, 3]\n"
    (error,) = netspec.check(spec).errors
    assert "for one channel, write input: [1, 28, 28]" in error.message


@pytest.mark.parametrize("written, hint", [
    ("Conv2d: (3, 32, 5, 1, 2)",
     "(YAML has no tuples: the Python (3, 32, 5, 1, 2) is the list [3, 32, 5, 1, 2] in YAML)"),
    ("MaxPool2d: (2)", "(write 2, without the parentheses)"),
    ("MaxPool2d:\n      kernel_size: (2, 2)",
     "(YAML has no tuples: the Python (2, 2) is the list [2, 2] in YAML)"),
])
def test_python_s_tuple_syntax_gets_the_yaml_form(written, hint):
    spec = f"netspec: 1\ninput: [3, 32, 32]\nlayers:\n  - {written}\n"
    (error,) = netspec.check(spec).errors
    assert error.message.endswith(hint)
    assert netspec.check(spec.replace("(", "[").replace(")", "]")).ok


def test_softmax_before_cross_entropy_is_warned_about_when_training(tmp_path):
    pytest.importorskip("torch")
    from netspec.train.loop import train

    spec = tmp_path / "softmax_last.yaml"
    spec.write_text(textwrap.dedent("""\
        netspec: 1
        input: [1, 8, 8]
        layers:
          - Flatten
          - Linear: [64, 10]
          - Softmax: {dim: 1}
        train:
          data: {name: digits}
        """))
    stream = io.StringIO()
    train(str(spec), overrides={"runs": str(tmp_path / "runs"), "epochs": 1,
                                "progress": "plain", "tensorboard": False}, stream=stream)
    assert (f"{spec}:6:5: warning: layer 2 (Softmax) is the last layer and the loss is "
            "CrossEntropyLoss: CrossEntropyLoss applies log-softmax itself") in stream.getvalue()
    stream = io.StringIO()  # without the Softmax: no warning
    spec.write_text(spec.read_text().replace("  - Softmax: {dim: 1}\n", ""))
    train(str(spec), overrides={"runs": str(tmp_path / "runs2"), "epochs": 1,
                                "progress": "plain", "tensorboard": False}, stream=stream)
    assert "warning" not in stream.getvalue()


def test_the_readme_s_tutorial_model_checks_as_it_says():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)
                 if "Linear: [64*4*4, 64]" in b)
    result = netspec.check(block)
    assert result.ok and result.layers[7].kwargs["in_features"] == 1024
    assert result.total_params == 145_578  # the tutorial's Tudui
