"""The tutorial's first model, the CIFAR-10 "Tudui" net, written as a student writes it:
the hand-computed `64*4*4`, a badly indented argument block, the batch in the input
shape, PyTorch's tuple syntax, a Softmax before CrossEntropyLoss (issue 13, points 1, 2, 8)."""

from __future__ import annotations

import textwrap

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
