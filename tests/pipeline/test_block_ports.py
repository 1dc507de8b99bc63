"""Blocks and groups with several inputs and outputs (inputs: [x, shortcut], outputs: a list
or a mapping): checked, built and generated as a PyTorch user writes forward(self, x,
shortcut) -> {"low": a, "high": b}, the same state_dict and outputs as a hand-written
module; the mistakes, each at its place; summary and render."""

from __future__ import annotations

import pytest
import torch
from function_ops import load_generated
from torch import nn

import netspec
from netspec.emit.codegen import StyleError, generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize

SPEC = """\
netspec: 1
name: Ports
input: [4, 8, 8]
outputs:
  main: pair
  side: mix1.high
blocks:
  Mix:
    params: {channels: required}
    inputs: [x, shortcut]
    outputs: {low: conv, high: proj}
    layers:
      - Conv2d: {out_channels: channels, kernel_size: 3, padding: 1}
        name: conv
      - Add:
        from: [conv, shortcut]
        name: joined
      - ReLU:
        name: act
      - Conv2d: {out_channels: channels, kernel_size: 1}
        name: proj
  Halves:
    outputs: [first, second]
    layers:
      - Conv2d: {out_channels: 8, kernel_size: 1}
        name: first
      - Conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
        from: input
        name: second
layers:
  - Conv2d: {out_channels: 8, kernel_size: 1}
    name: stem
  - Halves:
    name: halves
  - Mix: {channels: 8}
    from: [halves.0, halves.1]
    name: mix1
  - Mix: {channels: 8}
    from: [mix1.high, stem]
    name: mix2
  - Add:
    from: [mix2.low, mix2.high]
    name: total
  - name: pair
    from: [total, mix1.low]
    inputs: [a, b]
    outputs: [product]
    layers:
      - Mul:
        from: [a, b]
        name: product
"""


class Mix(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x, shortcut):
        conv = self.conv(x)
        return {"low": conv, "high": self.proj(torch.relu(conv + shortcut))}


class Halves(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(8, 8, 1)
        self.second = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return self.first(x), self.second(x)


class Reference(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(4, 8, 1)
        self.halves = Halves()
        self.mix1 = Mix(8)
        self.mix2 = Mix(8)

    def forward(self, x):
        stem = self.stem(x)
        first, second = self.halves(stem)
        mix1 = self.mix1(first, second)
        mix2 = self.mix2(mix1["high"], stem)
        return {"main": (mix2["low"] + mix2["high"]) * mix1["low"], "side": mix1["high"]}


def same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_check_infers_every_output():
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    by_name = {n.name: n for n in result.layers}
    assert by_name["halves"].outputs == [("0", (8, 8, 8)), ("1", (8, 8, 8))]
    assert by_name["mix1"].outputs == [("low", (8, 8, 8)), ("high", (8, 8, 8))]
    assert by_name["mix1"].port_inputs == ["x", "shortcut"]
    assert by_name["mix1"].sources == ["halves.0", "halves.1"]
    assert by_name["pair"].output_shape == (8, 8, 8) and by_name["pair"].outputs == []
    assert by_name["mix1"].params == Mix(8).conv.weight.numel() + 8 + 8 * 8 + 8
    assert result.total_params == sum(p.numel() for p in Reference().parameters())


def test_build_matches_a_hand_written_module():
    built = netspec.build(SPEC).eval()
    reference = Reference().eval()
    assert list(built.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert same(built(x), reference(x))
        low_high = built.mix1(*built.halves(built.stem(x)))
    assert isinstance(low_high, dict) and list(low_high) == ["low", "high"]
    assert isinstance(built.halves(built.stem(x)), tuple)
    assert isinstance(built.pair(x[:, :1], x[:, :1]), torch.Tensor)  # one output: a tensor


def test_generated_code_runs_and_loads_the_same_weights(tmp_path):
    result = netspec.check(SPEC)
    source = generate(result, "class")
    assert ("    def forward(self, x: torch.Tensor, shortcut: torch.Tensor) -> "
            "dict[str, torch.Tensor]:") in source
    assert "    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:" in source
    assert "    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:" in source
    assert "self.mix1(halves[0], halves[1])" in source
    built = netspec.build(result).eval()
    generated = load_generated(result, tmp_path, "Ports")().eval()
    generated.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        assert same(generated(x), built(x))


CHAIN = """\
netspec: 1
name: Chain
input: [4, 8, 8]
blocks:
  Stem:
    inputs: [x]
    outputs: [conv]
    layers:
      - Conv2d: {out_channels: 8, kernel_size: 1}
        name: conv
      - ReLU:
layers:
  - Stem:
    name: stem
  - Flatten:
"""


@pytest.mark.parametrize("style", ["sequential", "add-module", "ordereddict"])
def test_sequential_styles_say_why_not(style):
    """A block with inputs:/outputs: is a forward of its own, even where it is a chain."""
    with pytest.raises(StyleError) as info:
        generate(netspec.check(CHAIN), style)
    (d,) = info.value.diagnostics
    assert (d.line, d.col) == (CHAIN.splitlines().index("  - Stem:") + 1, 5)
    assert ("its Stem 'stem' declares inputs: or outputs: (a forward taking 1 and returning "
            "1)") in d.message and "--style class" in d.message
    assert "def forward(self, x: torch.Tensor) -> torch.Tensor:" in generate(netspec.check(CHAIN))


def test_summary_and_render_show_the_outputs():
    summary = summarize(SPEC)
    rows = {r.name: r for r in summary.rows}
    assert "mix1" in rows and rows["mix1"].params == netspec.check(SPEC).layers[2].params
    text = str(summary)
    assert "mix1 (Mix)" in text
    dot = to_dot(SPEC)
    # each input into the entry inside that takes it, each output from the entry giving it
    assert '"@input" -> stem' in dot
    assert '"halves.first" -> "mix1.conv"' in dot
    assert '"halves.second" -> "mix1.joined"' in dot
    assert '"mix1.proj" -> "mix2.conv"' in dot
    assert "stem -> \"mix2.joined\"" in dot
    assert '"mix2.conv" -> total [label=" low: 8×8×8 "' in dot
    assert '"mix2.proj" -> total [label=" high: 8×8×8 "' in dot


def test_exported_to_onnx_with_its_dict_outputs(tmp_path):
    """The network returns {main, side}, side one output of a block: ONNX export verifies
    both against PyTorch at two batch sizes."""
    from netspec.emit import export as ex

    report = ex.export(SPEC, "onnx", tmp_path / "ports.onnx")
    assert report.ok and sorted(report.differences) == [2, 3], report.differences
    assert report.scale > 1e-2


def errors(text: str) -> list[tuple[int, int, str]]:
    result = netspec.check(text)
    return [(d.line, d.col, d.message) for d in result.errors]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_wrong_number_of_inputs_is_said_at_from():
    text = SPEC.replace("from: [mix1.high, stem]", "from: [mix1.high]")
    ((line, col, message),) = errors(text)
    assert line == line_of(text, "from: [mix1.high]") and col == 11
    assert message == ("layer 3 'mix2' (Mix): block Mix takes 2 inputs (x, shortcut), given 1; "
                       "write from: [x, shortcut] with the entries that give them")
    text = SPEC.replace("from: [total, mix1.low]", "from: [total, mix1.low, stem]")
    ((_, _, message),) = errors(text)
    assert message == "layer 5 'pair': the group takes 2 inputs (a, b), given 3"


def test_an_output_naming_no_entry_suggests_one():
    text = SPEC.replace("outputs: {low: conv, high: proj}", "outputs: {low: conv, high: projj}")
    ((line, col, message),) = errors(text)
    assert (line, col) == (line_of(text, "high: projj"), 32)
    assert message.startswith("block Mix: outputs: high: no entry of its layers (or input) "
                              "is named 'projj' (did you mean 'proj'?)")


def test_taking_a_block_with_several_outputs_whole_names_its_parts():
    text = SPEC.replace("from: [mix2.low, mix2.high]", "from: [mix2, mix2.high]")
    ((_, _, message),) = errors(text)
    assert message == ("layer 4 'total' (Add): 'mix2' gives 2 tensors (8×8×8, 8×8×8); take "
                       "one by name: from: mix2.low or mix2.high; Concat or Stack takes them "
                       "all: from: mix2")
    text = SPEC.replace("from: [mix2.low, mix2.high]", "from: [mix2.low, mix2.middle]")
    ((_, _, message),) = errors(text)
    assert message == ("layer 4 'total' (Add): from: 'mix2' has no output 'middle'; it gives 2: "
                       "mix2.low, mix2.high")


def test_taking_a_mapping_of_one_output_whole_says_to_take_it_by_name():
    """outputs: {out: r} is a dict of one tensor: the advice is its part, not '1 tensors'
    nor a Concat, which takes two or more (found by the mutation fuzzer)."""
    text = """\
netspec: 1
input: [3, 8, 8]
layers:
  - name: g
    outputs: {out: r}
    layers:
      - ReLU:
        name: r
  - Tanh
"""
    ((line, col, message),) = errors(text)
    assert (line, col) == (9, 5)
    assert message == ("layer 1 (Tanh): 'g' gives one tensor (3×8×8) as its part 'out'; "
                       "take it so: from: g.out")
    fixed = netspec.check(text.replace("  - Tanh\n", "  - Tanh:\n    from: g.out\n"))
    assert fixed.ok and fixed.output_shape == (3, 8, 8)


def test_a_repeated_block_whose_inputs_is_no_list_is_an_error_not_a_crash():
    """inputs: true on a block used with repeat: (found by the mutation fuzzer: check raised
    TypeError)."""
    text = """\
netspec: 1
input: [3, 8, 8]
blocks:
  B:
    inputs: true
    layers: [ReLU]
layers:
  - B:
    repeat: 2
"""
    found = errors(text)
    assert found and all(isinstance(line, int) and line >= 1 for line, _, _ in found)
    assert any(line == 5 and "inputs" in message for line, _, message in found), found


LEFT_OUT = """\
netspec: 1
name: LeftOut
input: [4, 6, 6]
outputs: {main: last, skipped: gone}
blocks:
  B:
    params: {flag: 1}
    outputs: {a: maybe, b: act}
    layers:
      - Identity:
        name: maybe
        if: flag == 1
      - Tanh:
        name: act
layers:
  - ReLU:
    name: stem
  - name: g
    outputs: [maybe]
    layers:
      - Identity:
        name: maybe
        if: false
  - B: {flag: 0}
    name: b0
  - B: {flag: 1}
    name: b1
    from: b0.a
  - Add:
    from: [b1.a, b1.b]
  - Sigmoid:
    name: gone
    if: false
  - Flatten:
    name: last
"""


def test_an_output_naming_an_entry_left_out_by_if_is_what_it_would_have_taken(tmp_path):
    """outputs: naming an entry whose if: leaves it out (a group's, a block's for one use,
    the network's) returns that entry's input, in build and in the generated code (found
    by the mutation fuzzer: codegen raised KeyError, build RecursionError)."""
    result = netspec.check(LEFT_OUT)
    assert result.ok, [d.format() for d in result.errors]
    built = netspec.build(result).eval()
    generated = load_generated(result, tmp_path, "LeftOut")().eval()
    x = torch.randn(2, 4, 6, 6)
    stem = torch.relu(x)
    with torch.no_grad():
        for model in (built, generated):
            out = model(x)
            assert torch.equal(out["main"], (stem + torch.tanh(stem)).flatten(1))
            assert torch.equal(out["skipped"], stem + torch.tanh(stem))
    assert [o.shape for o in result.network.outputs] == [(144,), (4, 6, 6)]


@pytest.mark.parametrize("ports", ["outputs: [r]", "inputs: [x]"])
def test_a_body_with_ports_is_a_graph_module_and_refuses_its_attribute_names(ports):
    """A group or block declaring inputs:/outputs: is built as a GraphModule even as a
    chain: a child named 'code' (GraphModule.code) is an error at its name, not a build
    that calls a string (found by the mutation fuzzer, seed 10, build mutant #1605)."""
    text = f"""\
netspec: 1
input: [3, 8, 8]
blocks:
  B:
    {ports}
    layers:
      - Tanh:
        name: code
      - ReLU:
        name: r
layers:
  - name: g
    {ports}
    layers:
      - Tanh:
        name: code
      - ReLU:
        name: r
  - B:
"""
    found = errors(text)
    assert [(line, col) for line, col, _ in found] == [(8, 15), (16, 15)], found
    assert all("name 'code' is taken by torch.fx.GraphModule" in m for _, _, m in found)
    # the network's own outputs: make its layers a GraphModule too
    top = "netspec: 1\ninput: [3, 8, 8]\noutputs: [r]\nlayers:\n  - Tanh:\n    name: code\n" \
        "  - ReLU:\n    name: r\n"
    assert [(line, "GraphModule.code" in m) for line, _, m in errors(top)] == [(6, True)]


def test_input_names_are_checked():
    text = SPEC.replace("inputs: [x, shortcut]", "inputs: [x, x]")
    found = errors(text)
    assert (line_of(text, "inputs: [x, x]"), 17,
            "block Mix: input 'x' is named twice; each input needs its own name") in found
    text = SPEC.replace("inputs: [a, b]", "inputs: [a, product]")
    found = errors(text)
    assert any("name 'product' is already an input (inputs:)" in m for _, _, m in found)
    text = SPEC.replace("inputs: [x, shortcut]", "inputs: [x, class]")
    assert any("input name 'class' cannot be an argument of forward" in m
               for _, _, m in errors(text))
    text = SPEC.replace("      - Add:\n        from: [conv, shortcut]",
                        "      - Add:\n        from: [conv, shortcut2]")
    ((_, _, message),) = [e for e in errors(text) if "shortcut2" in e[2]]
    assert "(did you mean 'shortcut'?)" in message and "names here: x, shortcut, conv" in message


def test_inputs_on_a_layer_is_refused():
    text = SPEC.replace("    name: stem\n", "    name: stem\n    inputs: [q]\n", 1)
    ((line, col, message),) = errors(text)
    assert (line, col) == (line_of(text, "inputs: [q]"), 5)
    assert message.startswith("layer 0 'stem' (Conv2d): inputs: belongs to a group")


def test_a_group_without_inputs_given_two_is_refused():
    text = SPEC.replace("    inputs: [a, b]\n    outputs: [product]\n", "").replace(
        "        from: [a, b]\n", "")
    ((_, _, message),) = errors(text)
    assert message == ("layer 5 'pair': the group takes one input (it declares no inputs:), "
                       "given 2")


NUMBERED = """\
netspec: 1
name: Numbered
input: [8, 4, 4]
blocks:
  Pair:
    outputs: [a, b]
    layers:
      - Conv2d: {out_channels: 8, kernel_size: 1}
        name: a
      - ReLU:
        name: b
layers:
  - Pair:
  - Add:
    from: ['0.0', '0.1']
"""


def test_an_unnamed_entry_s_outputs_are_taken_by_its_number(tmp_path):
    """from: '0.1': one output of the entry numbered 0 (an importer's ModuleList child)."""
    result = netspec.check(NUMBERED)
    assert result.ok, [d.format() for d in result.errors]
    built = netspec.build(result).eval()
    generated = load_generated(result, tmp_path, "Numbered")().eval()
    generated.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 8, 4, 4)
    conv = getattr(built, "0").a
    with torch.no_grad():
        expected = conv(x) + torch.relu(conv(x))
        assert torch.allclose(built(x), expected) and torch.allclose(generated(x), expected)
    assert "out0 = getattr(self, \"0\")(x)" in generate(result)
    ((_, _, message),) = errors(NUMBERED.replace("'0.1'", "'0.2'"))
    assert message == "layer 1 (Add): from: '0' has no output '2'; it gives 2: 0.0, 0.1"
    plain = NUMBERED.replace("  - Pair:\n", "  - ReLU:\n  - Pair:\n").replace("'0.1'", "'1.1'")
    ((_, _, message),) = errors(plain)
    assert message == "layer 2 (Add): from: '0' gives one tensor, not several: write from: '0'"
    # a numbered entry giving one tensor is taken whole by its number, as a string
    whole = netspec.check(plain.replace("['0.0', '1.1']", "['0', '1.1']"))
    assert whole.ok, [d.format() for d in whole.errors]
    with torch.no_grad():
        built = netspec.build(whole).eval()
        pair = getattr(built, "1")
        expected = torch.relu(x) + torch.relu(pair.a(torch.relu(x)))
        assert torch.allclose(built(x), expected)
    ((_, _, message),) = errors(plain.replace("['0.0', '1.1']", "[0, '1.1']"))
    assert message == "layer 2 (Add): from.0 must be a string, got 0"


def test_a_repeat_of_a_block_with_several_inputs_says_to_write_the_copies_out():
    text = SPEC.replace("    from: [mix1.high, stem]\n    name: mix2",
                        "    from: [mix1.high, stem]\n    repeat: 2\n    name: mix2")
    found = errors(text)
    assert (line_of(text, "repeat: 2"), 13,
            "layer 3 'mix2' (Mix): repeat: passes one tensor from copy to copy, and block "
            "Mix takes 2 and gives 2; write the copies out, each taking the one before's "
            "outputs (from: [a.0, a.1])") in found
