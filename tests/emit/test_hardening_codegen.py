"""Issue 10, sections 2 and 3: generated code is always right, and codegen works wherever
check does.  Each reproducer of the issue (and each kind the mutation fuzzer found in the
emitters) is a test here: the generated module, imported from its file, must have
netspec.build's state_dict keys and shapes and give its outputs with its weights."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from generated import build_weights_for

import netspec
from netspec.emit.codegen import MAX_NESTING, STYLES, StyleError, generate

ROOT = Path(__file__).resolve().parents[2]


def spec_text(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def import_generated(source: str, name: str, where: Path):
    file = where / f"gen_{abs(hash(source))}.py"
    file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)()


def assert_same_as_build(text: str, tmp_path: Path, styles=("class",)) -> dict[str, str]:
    """Each style's file builds the model netspec.build builds: keys, shapes, outputs."""
    result = netspec.check(text)
    assert result.ok, [d.format() for d in result.errors]
    torch.manual_seed(0)
    want_model = netspec.build(result).eval()
    state = want_model.state_dict()
    x = torch.randn(2, *result.network.input_shape)
    with torch.no_grad():
        want = want_model(x)
    sources = {}
    for style in styles:
        source = generate(result, style)
        compile(source, f"<{style}>", "exec")
        model = import_generated(source, result.network.name, tmp_path).eval()
        # build's keys, or (entries the spec leaves unnamed, named) the same by position
        model.load_state_dict(build_weights_for(model, source, state), strict=True)
        with torch.no_grad():
            got = model(x)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        sources[style] = source
    return sources


NEGATIVE_PARAMETER = spec_text("""
    netspec: 1
    input: [3, 8, 8]
    blocks:
      Blk:
        params: {c: 4, p: -2}
        layers:
          - Conv2d: {out_channels: c + p ** 2, kernel_size: 1}
    layers:
      - Blk: {c: 4}
      - Blk: {c: 5}
    """)


def test_negative_parameter_in_block_arithmetic(tmp_path):
    """c + p ** 2 with p: -2 is c + 4: the constant is written (-2) ** 2 (was -2 ** 2,
    which Python reads as -(2 ** 2), so the generated model had c - 4 channels)."""
    sources = assert_same_as_build(NEGATIVE_PARAMETER, tmp_path, STYLES[:1])
    assert "c + (-2) ** 2" in sources["class"]
    assert "-2 ** 2" not in sources["class"].replace("(-2) ** 2", "")


@pytest.mark.parametrize("expression,p", [("c - p", -3), ("-p + c", -2), ("c * -p", -1),
                                          ("c // -p + 8", -2), ("c - -p + 9", 2),
                                          ("(c + p) ** 2", -1), ("-p * -p + c", -3)])
def test_block_arithmetic_with_signed_parameters(expression, p, tmp_path):
    text = NEGATIVE_PARAMETER.replace("c + p ** 2", expression).replace("p: -2", f"p: {p}")
    assert_same_as_build(text, tmp_path)


GROUP_NAMED_LIKE_A_BLOCK = spec_text("""
    netspec: 1
    input: [3, 8, 8]
    blocks:
      Blk:
        params: {}
        layers:
          - Conv2d: {out_channels: 4, kernel_size: 1}
            name: conv
    layers:
      - name: features
        layers:
          - name: Blk
            layers:
              - Blk:
                name: b
              - ReLU:
                name: r
          - Blk:
            name: after
    """)


def test_group_named_like_a_block_class(tmp_path):
    """A group named Blk inside a named container became the local variable Blk in
    __init__, shadowing class Blk (UnboundLocalError, or calling the Sequential)."""
    source = assert_same_as_build(GROUP_NAMED_LIKE_A_BLOCK, tmp_path)["class"]
    assert "Blk_ = nn.Sequential()" in source
    assert 'Blk_.add_module("b", Blk(3))' in source


def test_block_parameter_named_like_a_block_class(tmp_path):
    text = spec_text("""
        netspec: 1
        input: [3, 8, 8]
        blocks:
          Inner:
            params: {w: 4}
            layers:
              - Conv2d: {out_channels: w, kernel_size: 1}
                name: conv
          Outer:
            params: {Inner: 4}
            layers:
              - Inner: {w: Inner}
                name: a
              - Conv2d: {out_channels: Inner, kernel_size: 1}
                name: b
        layers:
          - Outer: {Inner: 5}
            name: o1
          - Outer: {Inner: 6}
            name: o2
        """)
    source = assert_same_as_build(text, tmp_path)["class"]
    assert "def __init__(self, in_channels, Inner_=4)" in source


def nested_blocks(depth: int, repeat: bool, named: bool = True) -> str:
    """Blocks using blocks ``depth`` deep (through repeats): module nesting far deeper than
    the YAML's."""
    blocks = {"B0": {"params": {}, "layers": [{"ReLU": None}]}}
    for k in range(1, depth):
        use = {f"B{k - 1}": None, **({"name": f"r{k}"} if named else {})}
        if repeat:
            use["repeat"] = 1
        blocks[f"B{k}"] = {"params": {}, "layers": [use]}
    top = {f"B{depth - 1}": None, **({"name": "deep"} if named else {})}
    return yaml.safe_dump({"netspec": 1, "input": [3, 4, 4], "blocks": blocks,
                           "layers": [top]}, sort_keys=False)


def test_deep_nesting_in_ordereddict_style(tmp_path):
    """30 blocks nested through repeats are 240 brackets in one ordereddict expression:
    Python refused the file ("too many nested parentheses").  Deep containers now go into
    local variables first; every style compiles and builds build's model."""
    text = nested_blocks(30, repeat=True)
    sources = assert_same_as_build(text, tmp_path, ("class", "add-module", "ordereddict"))
    ordered = sources["ordereddict"]
    assert "        r2 = nn.Sequential(" in ordered  # a hoisted container
    for source in sources.values():
        depth = deepest = 0
        for char in source:
            depth += char in "([{"
            depth -= char in ")]}"
            deepest = max(deepest, depth)
        assert deepest <= MAX_NESTING + 8
    files = []
    for style, source in sources.items():
        file = tmp_path / f"deep_{style.replace('-', '_')}.py"
        file.write_text(source, encoding="utf-8")
        files.append(str(file))
    config = str(ROOT / "pyproject.toml")
    for command in (["format", "--check"], ["check", "--no-cache"]):
        done = subprocess.run([sys.executable, "-m", "ruff", *command, "--config", config,
                               *files], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_nested_groups_as_deep_as_a_spec_goes(tmp_path):
    """Groups nested 48 deep (49 exceed the loader's 100 levels and are refused at load) in
    every style, ordereddict included."""
    body: list = [{"ReLU": None}]
    for _ in range(48):
        body = [{"layers": body}]
    text = yaml.safe_dump({"netspec": 1, "input": [3, 4, 4], "layers": body})
    assert_same_as_build(text, tmp_path, STYLES)
    refused = netspec.check(yaml.safe_dump({"netspec": 1, "input": [3, 4, 4],
                                            "layers": [{"layers": body}]}))
    assert [d.message for d in refused.errors] == ["document is nested more than 100 levels deep"]


def test_deep_nesting_in_sequential_style(tmp_path):
    assert_same_as_build(nested_blocks(31, repeat=True, named=False), tmp_path,
                         ("sequential",))


BASE = spec_text("""
    netspec: 1
    base: torchvision:resnet18
    input: [3, 64, 64]
    edits:
      - replace: fc
        with: {Linear: {out_features: 10}}
    """)


def test_base_spec_codegen(tmp_path):
    """A base: spec (the README's form) generates like any spec: it failed with 'a spec
    with base: takes its layers from the base model' at base:, checking the expanded
    document a second time."""
    sources = assert_same_as_build(BASE, tmp_path)
    assert "nn.Linear(512, 10)" in sources["class"]
    for style in ("sequential", "add-module", "ordereddict"):  # ResNet branches
        with pytest.raises(StyleError, match="branches"):
            generate(BASE, style)


def test_base_spec_codegen_command(tmp_path):
    spec = tmp_path / "base.yaml"
    spec.write_text(BASE, encoding="utf-8")
    out = tmp_path / "model.py"
    done = subprocess.run([sys.executable, "-m", "netspec", "codegen", str(spec), "-o",
                           str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "class ResNet(nn.Module):" in out.read_text(encoding="utf-8")


def test_generate_takes_a_check_result():
    path = ROOT / "specs" / "zoo" / "resnet18.yaml"
    result = netspec.check(path)
    for style in ("class", "ordereddict"):
        try:
            want = generate(path, style)
        except StyleError as exc:
            with pytest.raises(StyleError) as info:
                generate(result, style)
            assert str(info.value) == str(exc)
        else:
            assert generate(result, style) == want
    with pytest.raises(netspec.SpecError):
        generate(netspec.check(ROOT / "specs" / "broken" / "tutorial_in_features.yaml"))


def test_wide_repeat_generates_in_linear_time():
    """A block repeated 3,000 times: each child's shape comment looked its counterpart up
    in every instance by a scan (quadratic: 9 s for 2,500 ResNet blocks)."""
    import time

    text = spec_text("""
        netspec: 1
        input: [4, 2, 2]
        blocks:
          Blk:
            params: {}
            layers:
              - Conv2d: {out_channels: 4, kernel_size: 1}
                name: conv
              - ReLU:
                name: act
        layers:
          - Blk:
            name: body
            repeat: 3000
        """)
    result = netspec.check(text)
    assert result.ok
    start = time.perf_counter()
    source = generate(result)
    elapsed = time.perf_counter() - start
    assert source.count("Blk(),") == 3000 or source.count("Blk()") >= 3000
    assert elapsed < 10, elapsed


def test_every_entry_left_out_by_if_is_an_error():
    """The fuzzer's find: a spec whose only entry has if: false checked ok with no layers,
    then summary raised an empty SpecError and build's dry run a TypeError."""
    text = "netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - ReLU:\n    if: false\n"
    result = netspec.check(text)
    assert not result.ok
    assert [d.message for d in result.errors] == [
        "layers: every entry is left out by its if:, so the network has no layers"]
    # a group emptied by if: stays fine: an identity, as nn.Sequential() is
    assert netspec.check(text.replace("  - ReLU:\n    if: false\n",
                                      "  - name: g\n    layers:\n      - ReLU:\n"
                                      "        if: false\n")).ok
