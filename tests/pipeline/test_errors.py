"""Error paths: every problem is a positioned diagnostic (exact line and column, a readable
message), never a traceback; the CLI's exit codes and --json output; the Python API; the
committed schema; and the names a layer may not take."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netspec
from netspec import SpecError
from netspec.core.diagnostics import Diagnostic

ROOT = Path(__file__).resolve().parents[2]
HEAD = "netspec: 1\ninput: [3, 8, 8]\nlayers:\n"  # layer entries start at line 4
LINE = re.compile(r"^(.+):(\d+):(\d+): (error|warning|note): (.+)$")


def errors(text: str) -> list[Diagnostic]:
    result = netspec.check(text)
    assert not result.ok
    for d in result.diagnostics:
        assert "\n" not in d.message and "Traceback" not in d.message
    return result.errors


def one_error(text: str, line: int, col: int, fragment: str) -> Diagnostic:
    found = errors(text)
    assert len(found) == 1, [d.format() for d in found]
    d = found[0]
    assert (d.line, d.col) == (line, col), d.format()
    assert fragment in d.message, d.format()
    return d


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", timeout=60, check=False,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


# ---------------------------------------------------------------- YAML syntax


@pytest.mark.parametrize("text, line, col, fragment", [
    # a list item indented one space too far
    ("netspec: 1\ninput: [3]\nlayers:\n  - ReLU: {inplace: true}\n   - ReLU\n", 5, 4,
     "does not fit the list that starts at line 4: its items start with '-' in column 3"),
    # a key indented less than its siblings
    ("netspec: 1\ninput: [3]\n  layers:\n  - ReLU\n", 3, 3, "its keys are in column 1"),
    # '- ReLU' (a string) with a name under it: the colon goes after ReLU
    ("netspec: 1\ninput: [3]\nlayers:\n  - ReLU\n    name: act1\n", 4, 9, "write '- ReLU:'"),
    ("netspec: 1\ninput: [3]\nlayers:\n  - ReLU  # act\n    name: act1\n", 4, 9,
     "write '- ReLU:'"),
    ("netspec: 1\ninput: [3]\nlayers:\n  - Conv2d: out_channels: 8\n", 4, 25, "braces"),
    ("netspec: 1\ninput: [3]\nlayers:\n\t- ReLU\n", 4, 1, "tab character"),
    ("netspec: 1\ninput: [3]\nlayers:\n  - Conv2d: {out_channels: 8\n  - ReLU\n", 4, 13,
     "this '{' is never closed"),
    ("netspec: 1\ninput: [1, 28, 28\nlayers:\n  - ReLU\n", 2, 8, "this '[' is never closed"),
    ("netspec: 1\ninput:[1]\nlayers:\n  - ReLU\n", 2, 7, "put a space after the ':' of 'input'"),
    ("netspec: 1\nname: \"Net\ninput: [1]\nlayers:\n  - ReLU\n", 2, 7, "never closed"),
    ("netspec: 1\ninput: *shape\nlayers:\n  - ReLU\n", 2, 8, "alias '*shape' refers to no anchor"),
    ("netspec: 1\n---\ninput: [1]\n", 2, 1, "one YAML document"),
    ("netspec: 1\ninput: [3]\x00\nlayers:\n  - ReLU\n", 2, 11, "U+0000 is not allowed"),
], ids=["list-indent", "key-indent", "bare-name", "bare-name-comment", "no-braces", "tab",
        "open-brace", "open-bracket", "no-space", "open-quote", "undefined-alias",
        "two-documents", "nul"])
def test_invalid_yaml(text, line, col, fragment):
    d = one_error(text, line, col, fragment)
    assert d.message.startswith("invalid YAML: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "---\n...\n"],
                         ids=["empty", "blank", "comment", "empty-document"])
def test_empty_file(text):
    one_error(text, 1, 1, "the file is empty; a spec needs at least 'netspec: 1', 'input:' and "
                          "'layers:'")


def test_empty_file_on_disk(tmp_path):
    spec = tmp_path / "empty.yaml"
    spec.write_bytes(b"")
    result = netspec.check(spec)
    assert [(d.line, d.col) for d in result.errors] == [(1, 1)]
    assert "the file is empty" in result.errors[0].message


# ---------------------------------------------------------------- top-level structure


@pytest.mark.parametrize("text, fragment", [
    ("- Conv2d\n- ReLU\n", "got a list"),
    ("hello\n", 'got a string, "hello"'),
    ("42\n", "got an integer, 42"),
])
def test_top_level_not_a_mapping(text, fragment):
    d = one_error(text, 1, 1, "a spec must be a mapping with the keys netspec, input and layers")
    assert fragment in d.message


@pytest.mark.parametrize("missing", ["netspec", "input", "layers"])
def test_missing_top_level_key(missing):
    parts = {"netspec": "netspec: 1\n", "input": "input: [3]\n", "layers": "layers:\n  - ReLU\n"}
    text = "".join(v for k, v in parts.items() if k != missing)
    one_error(text, 1, 1, f"missing '{missing}'")


def test_missing_everything_is_one_error_per_key():
    found = errors("name: Net\n")
    assert [d.message.split(":")[0] for d in found] == [
        "missing 'netspec'", "missing 'input'", "missing 'layers'"]


def test_misspelled_key_is_one_error_not_two():
    # inputs: is a key (named inputs); given a list, the message points to input:
    one_error("netspec: 1\ninputs: [3]\nlayers:\n  - ReLU\n", 2, 9,
              "inputs must be a mapping, got [3] (inputs: names each input, as src: [20]; "
              "for one input write input: [3])")
    one_error("netspec: 1\ninptu: [3]\nlayers:\n  - ReLU\n", 2, 1,
              "unknown top-level key 'inptu' (did you mean 'input'?)")
    one_error(HEAD + "  - Conv2d: {out_channels: 8, kernel: 3}\n", 4, 31,
              "unknown argument 'kernel' for Conv2d (did you mean 'kernel_size'?)")


def test_empty_layers():
    one_error("netspec: 1\ninput: [3]\nlayers: []\n", 3, 9, "layers must have at least 1 entry")


@pytest.mark.parametrize("text, line, col, fragment", [
    ("netspec: 1\ninput: 3x32x32\nlayers:\n  - ReLU\n", 2, 8,
     'input must be a list or a mapping, got "3x32x32" (write input: [3, 32, 32])'),
    ("netspec: 1\ninput: [3]\nlayers: {ReLU: null}\n", 3, 9, "layers must be a list"),
    ("netspec: 1\ninput: [3]\nlayers:\n  -ReLU\n", 4, 3, "a list item needs a space after the '-'"),
    ("netspec: 1\ninput: [3]\nlayers:\n", 3, 8, "layers must be a list, got nothing"),
    ("netspec: 1\ninput: {shape: [3], dtype: long}\nlayers:\n  - ReLU\n", 2, 28,
     "(did you mean 'int64'?)"),
    ("netspec: 1\ninput: {dtype: int64}\nlayers:\n  - ReLU\n", 2, 8, "input mapping needs 'shape'"),
    (HEAD + "  - Linear: {out_features: ten}\n", 4, 28,
     'out_features must be a positive integer, got "ten"'),
    (HEAD + "  - Linear: {out_features: 10.0}\n", 4, 28, "got 10.0 (write 10, without"),
    (HEAD + "  - Conv2d: {out_channels: true, kernel_size: 3}\n", 4, 28, "got true"),
    (HEAD + "  - Conv2d: {out_channels: yes, kernel_size: 3}\n", 4, 28,
     "got 'yes' (YAML reads it as true)"),
    (HEAD + "  - Conv2d: {out_channels: 8, kernel_size: 2.5}\n", 4, 44,
     "kernel_size must be an integer or a list of 2 integers, got 2.5"),
    (HEAD + "  - ReLU:\n    name: 5\n", 5, 11, "name must be a string, got 5"),
    (HEAD + "  - [Conv2d, 8]\n", 4, 5, "(write '- Conv2d: 8')"),
    (HEAD + "  - conv2d: {out_channels: 8}\n", 4, 5,
     "unknown layer 'conv2d' (did you mean 'Conv2d'?)"),
    (HEAD + "  - Conv2D: {out_channels: 8}\n", 4, 5, "layer 0: unknown layer 'Conv2D'"),
    (HEAD + "  - foo: 3\n", 4, 5, "unknown key 'foo' in a layer entry; layer types are CamelCase"),
    (HEAD + "  - ReLU:\n    nmae: act\n", 5, 5,
     "layer 0: unknown key 'nmae' in a layer entry (did you mean 'name'?)"),
    (HEAD + "  - name: act\n", 4, 5, "layer 0 'act': entry has no layer type"),
    # valid YAML: the over-indented '- ReLU' continues the plain string 'ReLU' above
    (HEAD + "  - ReLU\n   - ReLU\n", 4, 5, "two list items run together"),
    (HEAD + "  - Conv2d: {out_channels: 8, kernel_size: 3}\n    ReLU:\n", 4, 5,
     "an entry holds one layer, found Conv2d and ReLU"),
    (HEAD + "  - ReLU:\n    from: x\n", 5, 11, "no earlier entry here is named 'x'"),
    (HEAD + "  - Linear\n", 4, 5, "missing required argument 'out_features': write Linear: "),
    (HEAD + "  - Flatten\n  - Linear: 10\n", 5, 13, "this sets in_features"),
    (HEAD + "  - ReLU: [true, 1]\n", 4, 11, "ReLU takes at most 1 positional argument (inplace)"),
    (HEAD + "  - Conv2d: {out_channels: 8, kernel_size: 3, padding_mode: zero}\n", 4, 61,
     "(did you mean 'zeros'?)"),
    # resolve once read a block's params with dict() and raised (ValueError) on this
    ("netspec: 1\ninput: [3]\nblocks:\n  B:\n    params: [planes]\n    layers: [ReLU]\n"
     "layers:\n  - B\n", 5, 13, 'blocks.B.params must be a mapping, got ["planes"]'),
])
def test_wrong_types_and_values(text, line, col, fragment):
    one_error(text, line, col, fragment)


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize("text, line, col, fragment", [
    ("netspec: 1\ninput: [3, 0, 32]\nlayers:\n  - ReLU\n", 2, 12,
     "input[1] must be at least 1, got 0"),
    ("netspec: 1\ninput: [3, -1, 32]\nlayers:\n  - ReLU\n", 2, 12, "must be at least 1, got -1"),
    ("netspec: 1\ninput: []\nlayers:\n  - ReLU\n", 2, 8, "input must have at least 1 entry"),
    ("netspec: 1\ninput: [3, 4294967296, 32]\nlayers:\n  - ReLU\n", 2, 12,
     "input[1] 4,294,967,296 is absurdly large (at most 2,147,483,647)"),
    (HEAD + "  - Conv2d: {out_channels: 0, kernel_size: 3}\n", 4, 28,
     "out_channels must be at least 1, got 0"),
    (HEAD + "  - Linear: {out_features: -5}\n", 4, 28, "out_features must be at least 1, got -5"),
    (HEAD + f"  - Linear: {{out_features: {2**31}}}\n", 4, 28, "is absurdly large"),
    (HEAD + "  - Conv2d: {out_channels: 4, kernel_size: [3, 0]}\n", 4, 48,
     "kernel_size[1] must be at least 1, got 0"),
    (HEAD + "  - Conv2d: {out_channels: 4, kernel_size: [3, 3, 3]}\n", 4, 44,
     "kernel_size must have exactly 2 entries, got 3"),
])
def test_bad_sizes(text, line, col, fragment):
    one_error(text, line, col, fragment)


def test_largest_size_is_accepted():
    assert netspec.check(HEAD + "  - Flatten\n  - Linear: {out_features: 2147483647}\n").ok


# ---------------------------------------------------------------- duplicates and names


def test_duplicate_yaml_keys():
    one_error("netspec: 1\ninput: [3]\nnetspec: 1\nlayers:\n  - ReLU\n", 3, 1,
              "duplicate key 'netspec' (first given at line 1); YAML would silently keep only "
              "the last")
    one_error(HEAD + "  - Conv2d: {out_channels: 4, kernel_size: 3, out_channels: 8}\n", 4, 47,
              "duplicate key 'out_channels'")


def test_duplicate_layer_names():
    text = HEAD + "  - ReLU:\n    name: act\n  - Tanh:\n    name: act\n"
    one_error(text, 7, 11, "layer 1 (Tanh): name 'act' is already used by layer 0 (line 4)")


@pytest.mark.parametrize("name, fragment", [
    ('"x; import os"', 'it contains ";"'),
    ("\"__import__('os')\"", 'it contains "("'),
    ('"conv\\nbreak"', "it contains a line break"),
    ('"conv\\rbreak"', "it contains a line break"),
    ('"conv1\\n"', "it contains a line break"),   # Python's $ matches before a final \n
    ('"\u0430ct"', "U+0430 CYRILLIC SMALL LETTER A"),      # Cyrillic а, not Latin a
    ('"c\u043env1"', "U+043E CYRILLIC SMALL LETTER O"),    # Cyrillic о
    ('"conv\u00a0one"', "U+00A0 NO-BREAK SPACE"),
    ('"conv.one"', "it contains \".\"; try 'conv_one'"),
    ('"conv-"', "a '-' may only join two parts"),
    ('"-conv"', "a '-' may only join two parts"),
    ('"a--b"', "a '-' may only join two parts"),
    ('"block1-0 x"', "it contains \" \"; try 'block1_0_x'"),
    ("1st", "it starts with a digit"),
    ('""', "it is empty"),
])
def test_non_identifier_names(name, fragment):
    d = one_error(HEAD + f"  - ReLU:\n    name: {name}\n", 5, 11, "is not a module name")
    assert fragment in d.message
    assert d.message.startswith("layer 0 (ReLU): name ")  # the bad name is not in the label


@pytest.mark.parametrize("name", ["class", "lambda", "import", "None", "def"])
def test_keyword_names(name):
    one_error(HEAD + f"  - ReLU:\n    name: {name}\n", 5, 11, f"name '{name}' is a Python keyword")


def test_keyword_network_name():
    one_error("netspec: 1\nname: class\ninput: [3]\nlayers:\n  - ReLU\n", 2, 7,
              "name 'class' is a Python keyword")


@pytest.mark.parametrize("name", ["forward", "training", "parameters", "state_dict", "to"])
def test_module_attribute_names(name):
    one_error(HEAD + f"  - ReLU:\n    name: {name}\n", 5, 11,
              f"name '{name}' is taken by nn.Module itself")


def test_self_is_not_a_layer_name():
    one_error(HEAD + "  - ReLU:\n    name: self\n", 5, 11,
              "name 'self' would shadow forward's self")


@pytest.mark.parametrize("name", ["_modules", "_parameters", "__init__", "_private"])
def test_underscore_names(name):
    one_error(HEAD + f"  - ReLU:\n    name: {name}\n", 5, 11, "starts with '_'")


@pytest.mark.parametrize("text, line, col, fragment", [
    ('netspec: 1\nname: "Net\\n"\ninput: [3]\nlayers:\n  - ReLU\n', 2, 7,
     'name "Net\\n" is not a Python identifier'),
    (HEAD + '  - ReLU:\n    name: a\n  - Add:\n    from: [a, "a\\n"]\n', 7, 15,
     'from: "a\\n" is not a name'),
    ('netspec: 1\ninput: [3]\nblocks:\n  "B\\n":\n    layers: [ReLU]\nlayers: [ReLU]\n', 4, 3,
     'block name "B\\n" is not a CamelCase Python identifier: it contains a line break'),
    ('netspec: 1\ninput: [3]\nblocks:\n  b1:\n    layers: [ReLU]\nlayers: [ReLU]\n', 4, 3,
     'block name "b1" must start with a capital letter'),
    ('netspec: 1\ninput: [3]\nblocks:\n  B:\n    params: {p-x: 1}\n    layers: [ReLU]\n'
     'layers: [B]\n', 5, 13, 'parameter name "p-x" is not a Python identifier'),
])
def test_names_outside_layers(text, line, col, fragment):
    """Every name a spec gives (network, from:, blocks, parameters) is matched whole:
    a final line break or a lower-case block name is an error at the name."""
    found = errors(text)
    assert (found[0].line, found[0].col) == (line, col), found[0].format()
    assert fragment in found[0].message, found[0].format()


def test_bad_name_does_not_stop_the_shapes():
    text = (HEAD + "  - ReLU:\n    name: conv.one\n  - Flatten\n"
            "  - Linear: {in_features: 5, out_features: 2}\n")
    found = errors(text)
    assert [(d.line, d.col) for d in found] == [(5, 11), (7, 27)]
    assert "in_features 5 does not match the 192 features" in found[1].message


# ---------------------------------------------------------------- version, tags, aliases, size


@pytest.mark.parametrize("value, shown", [("2", "2"), ("'1'", '"1"'), ("1.5", "1.5"),
                                          ("yes", "'yes' (YAML reads it as true)")])
def test_unknown_version(value, shown):
    one_error(f"netspec: {value}\ninput: [3]\nlayers:\n  - ReLU\n", 1, 10,
              f"unsupported netspec version {shown}; this netspec reads version 1")


@pytest.mark.parametrize("tagged, col", [
    ("!!python/object/apply:builtins.exec [\"open(r'{marker}', 'w').write('x')\"]", 8),
    ("!!python/object/new:builtins.exec [\"open(r'{marker}', 'w').write('x')\"]", 8),
    ("!!python/object:argparse.Namespace {{x: 1}}", 8),
    ("!!python/name:os.system ''", 8),
    ("!!python/tuple [3, 32, 32]", 8),
    ("!shape [3, 32, 32]", 8),
])
def test_tags_construct_nothing(tmp_path, tagged, col):
    marker = tmp_path / "constructed"
    text = f"netspec: 1\ninput: {tagged.format(marker=marker)}\nlayers:\n  - ReLU\n"
    d = one_error(text, 2, col, "is not allowed in a spec")
    assert "never constructs objects" in d.message
    assert not marker.exists()


def test_implicit_timestamp_is_refused():
    one_error("netspec: 1\nname: 2024-01-01\ninput: [3]\nlayers:\n  - ReLU\n", 2, 7,
              "'2024-01-01' reads as a YAML timestamp, which a spec cannot hold; quote it")


def billion_laughs() -> str:
    lines = ["netspec: 1", "input: [3]", "a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    previous = "a"
    for name in "bcdefghi":  # 9**9 = 387,420,489 strings once expanded
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines + ["layers:", "  - ReLU"]) + "\n"


def test_billion_laughs_fails_fast():
    start = time.perf_counter()
    d = one_error(billion_laughs(), 9, 4, "aliases expand the document to more than 1,000,000 "
                                          "values")
    assert time.perf_counter() - start < 1.0
    assert d.line == 9  # 'g: &g [...]', where the expansion first passes the limit


def test_billion_laughs_cli_fails_fast(tmp_path):
    spec = tmp_path / "bomb.yaml"
    spec.write_text(billion_laughs(), encoding="utf-8")
    start = time.perf_counter()
    proc = cli("check", str(spec))
    assert time.perf_counter() - start < 5.0  # interpreter start-up included
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{spec}:9:4: error: aliases expand" in proc.stderr


@pytest.mark.parametrize("text, line, col", [
    ("netspec: 1\ninput: &a [3, *a]\nlayers:\n  - ReLU\n", 2, 8),
    ("netspec: 1\ninput: &a {shape: *a}\nlayers:\n  - ReLU\n", 2, 8),
    ("&root\nnetspec: 1\ninput: [3]\nlayers:\n  - ReLU\nme: *root\n", 1, 1),
])
def test_recursive_alias(text, line, col):
    one_error(text, line, col, "an alias refers to a node that contains it (a cycle)")


def test_deep_nesting():
    text = "netspec: 1\ninput: " + "[" * 150 + "]" * 150 + "\nlayers:\n  - ReLU\n"
    d = errors(text)[0]
    assert d.line == 2 and "nested more than 100 levels deep" in d.message


def test_file_over_8_mib(tmp_path):
    spec = tmp_path / "huge.yaml"
    padding = "# " + "x" * 1000 + "\n"
    spec.write_text(HEAD + "  - ReLU\n" + padding * (8 * 1024 + 500), encoding="utf-8")
    assert spec.stat().st_size > 8 * 2**20
    start = time.perf_counter()
    result = netspec.check(spec)
    assert time.perf_counter() - start < 1.0
    assert [(d.line, d.col) for d in result.errors] == [(1, 1)]
    assert "file is larger than 8 MiB" in result.errors[0].message
    # the same limit for text given directly
    text = HEAD + "  - ReLU\n" + padding * (8 * 1024 + 500)
    assert "larger than 8 MiB" in errors(text)[0].message


@pytest.mark.parametrize("raw, line, col, byte", [
    (b"netspec: 1\nname: caf\xe9\ninput: [3]\nlayers:\n  - ReLU\n", 2, 10, "0xE9"),
    (b"\xff\xfen\x00e\x00", 1, 1, "0xFF"),                           # UTF-16
    (b"netspec: 1\nname: \xc3\xa9t\xc3\n", 2, 9, "0xC3"),            # cut in the middle
])
def test_non_utf8_bytes(tmp_path, raw, line, col, byte):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes(raw)
    result = netspec.check(spec)
    assert [(d.line, d.col) for d in result.errors] == [(line, col)]
    assert f"the file is not UTF-8 text (byte {byte} here)" in result.errors[0].message


def test_utf8_bom_is_fine(tmp_path):
    spec = tmp_path / "bom.yaml"
    spec.write_bytes(b"\xef\xbb\xbf" + HEAD.encode() + b"  - ReLU\n")
    assert netspec.check(spec).ok


# ---------------------------------------------------------------- the CLI


def test_cli_exit_0_and_table():
    proc = cli("check", "specs/tutorial_cifar10.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("specs/tutorial_cifar10.yaml: Tudui, input 3×32×32\n")
    assert proc.stdout.rstrip().endswith("output 10, 145,578 parameters")


def test_cli_depth_shows_that_many_levels():
    """check --depth N shows N levels (1: the top-level entries), as summary, render and
    torchinfo count them; the totals line does not change."""
    tables = {d: cli("check", "specs/zoo/resnet18.yaml", *(["--depth", str(d)] if d else []))
              for d in (1, 2, None)}
    def name_column(proc):  # where the header puts it
        lines = proc.stdout.splitlines()
        at = lines[1].index("name")
        return [line[at:].split()[0] for line in lines[3:-1]]

    names = {d: name_column(p) for d, p in tables.items()}
    assert names[1] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                        "layer4", "avgpool", "flatten", "fc"]
    assert names[2][:7] == names[1][:5] + ["0", "1"] and "conv2" not in names[2]
    assert "downsample" in names[None] and len(names[None]) > len(names[2])
    assert len({p.stdout.splitlines()[-1] for p in tables.values()}) == 1
    assert cli("check", "specs/lenet5.yaml", "--depth", "0").returncode == 2


def test_cli_exit_1_lines_are_positioned():
    proc = cli("check", "specs/broken/several_errors.yaml")
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[-1] == "specs/broken/several_errors.yaml: 5 errors"
    for line in lines[:-1]:
        assert LINE.match(line), line


@pytest.mark.parametrize("target, reason", [("no/such/spec.yaml", "No such file or directory"),
                                            ("specs", "is a directory")])
def test_cli_unreadable_is_exit_2_with_one_line(target, reason):
    proc = cli("check", target)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"netspec: cannot read {target}: {reason}"]


@pytest.mark.parametrize("shape", ["3,x,64", "0,64,64", "", "3,-1"])
def test_cli_bad_input_is_exit_2(shape):
    proc = cli("check", "--input", shape, "specs/lenet5.yaml")
    assert proc.returncode == 2
    assert "argument --input" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_no_command_is_exit_2():
    assert cli().returncode == 2


JSON_KEYS = {"file", "ok", "name", "input_shape", "output_shape", "total_params", "errors",
             "warnings", "layers"}
DIAGNOSTIC_KEYS = {"file", "line", "col", "severity", "layer", "message"}
LAYER_KEYS = {"index", "name", "type", "output_shape", "params"}


def test_cli_json_shape():
    proc = cli("check", "--json", "specs/lenet5.yaml", "specs/broken/several_errors.yaml")
    assert proc.returncode == 1
    assert proc.stderr == ""
    good, bad = [json.loads(line) for line in proc.stdout.splitlines()]

    assert set(good) == JSON_KEYS and list(good) == [
        "file", "ok", "name", "input_shape", "output_shape", "total_params", "errors",
        "warnings", "layers"]
    assert good["ok"] is True and good["errors"] == [] and good["warnings"] == []
    assert good["file"] == "specs/lenet5.yaml" and good["name"] == "LeNet5"
    assert good["input_shape"] == [1, 32, 32] and good["output_shape"] == [10]
    assert good["total_params"] == 61706
    assert all(set(layer) == LAYER_KEYS for layer in good["layers"])
    assert good["layers"][0] == {"index": 0, "name": "conv1", "type": "Conv2d",
                                 "output_shape": [6, 28, 28], "params": 156}

    assert set(bad) == JSON_KEYS and bad["ok"] is False and len(bad["errors"]) == 5
    assert all(set(e) == DIAGNOSTIC_KEYS for e in bad["errors"])
    first = bad["errors"][0]
    assert (first["file"], first["line"], first["col"], first["severity"]) == (
        "specs/broken/several_errors.yaml", 10, 27, "error")
    assert first["layer"] == {"index": 1, "name": "conv1", "type": "Conv2d"}
    assert first["message"].startswith("layer 1 'conv1' (Conv2d): in_channels 32 does not match")
    # layers after a broken one are listed with unknown shapes
    assert bad["layers"][-1] == {"index": 6, "name": "6", "type": "Linear",
                                 "output_shape": None, "params": None}


def test_cli_json_is_stable():
    runs = [cli("check", "--json", "specs/alexnet.yaml", "specs/broken/typo_layer_name.yaml").stdout
            for _ in range(2)]
    assert runs[0] == runs[1]
    assert len(runs[0].splitlines()) == 2


def test_cli_json_unreadable_yaml():
    proc = cli("check", "--json", "specs/broken/indentation.yaml")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and data["ok"] is False and data["layers"] == []
    assert (data["errors"][0]["line"], data["errors"][0]["col"]) == (7, 4)


def test_cli_several_files_worst_exit_code():
    proc = cli("check", "-q", "specs/lenet5.yaml", "specs/broken/empty.yaml",
               "specs/alexnet.yaml")
    assert proc.returncode == 1 and proc.stdout == ""
    empty = ("specs/broken/empty.yaml:1:1: error: the file is empty; a spec needs at least "
             "'netspec: 1', 'input:' and 'layers:'")
    assert proc.stderr.splitlines() == [empty, "specs/broken/empty.yaml: 1 error"]
    proc = cli("check", "--json", "specs/lenet5.yaml", "no/such.yaml", "specs/broken/empty.yaml")
    assert proc.returncode == 2
    assert [json.loads(line)["ok"] for line in proc.stdout.splitlines()] == [True, False]
    assert proc.stderr.splitlines() == [
        "netspec: cannot read no/such.yaml: No such file or directory"]


def test_cli_input_override_changes_shapes():
    plain = json.loads(cli("check", "--json", "specs/vgg16.yaml").stdout)
    small = json.loads(cli("check", "--json", "--input", "3,64,64", "specs/vgg16.yaml").stdout)
    assert small["ok"] and small["input_shape"] == [3, 64, 64]
    assert plain["layers"][30]["output_shape"] == [512, 7, 7]
    assert small["layers"][30]["output_shape"] == [512, 2, 2]
    assert small["layers"][31]["output_shape"] == [512, 7, 7]  # AdaptiveAvgPool2d(7)
    assert small["output_shape"] == plain["output_shape"] == [1000]
    assert small["total_params"] == plain["total_params"]
    # an input too small for five pools is an error, reported at the pool that fails
    tiny = cli("check", "--input", "3,16,16", "specs/vgg16.yaml")  # 16 -> 8 -> 4 -> 2 -> 1 -> 0
    assert tiny.returncode == 1
    assert tiny.stderr.startswith("specs/vgg16.yaml:39:30: error: layer 30 (MaxPool2d): output "
                                  "would be 0×0: input 1×1")


def test_check_does_not_import_torch():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "netspec", "check",
                           "specs/vgg16.yaml"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1] for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert any(name.strip() == "netspec.pipeline.check" for name in imported)  # the parse works
    assert not [name for name in imported if name.endswith(" torch")]
    assert not [name for name in imported if name.strip().startswith("torch")]


# ---------------------------------------------------------------- the Python API


def test_api_check_and_load():
    path = ROOT / "specs" / "lenet5.yaml"
    for source in (str(path), path, path.read_text(encoding="utf-8")):  # path, Path, YAML text
        result = netspec.check(source)
        assert result.ok and result.output_shape == (10,) and result.total_params == 61706
    spec = netspec.load(path)
    assert isinstance(spec, netspec.Spec) and spec.data["name"] == "LeNet5"
    assert netspec.check(spec, (1, 28, 28)).layers[6].output_shape == (256,)
    with pytest.raises(SpecError) as raised:
        netspec.load("netspec: 1\ninput: [3\n")
    assert raised.value.diagnostics[0].message.startswith("invalid YAML")


def test_api_check_never_raises_on_a_bad_spec():
    result = netspec.check("netspec: 1\ninput: [3\n")
    assert not result.ok and result.layers == [] and result.output_shape is None


def test_api_build():
    import torch

    model = netspec.build(ROOT / "specs" / "tutorial_cifar10.yaml")
    assert isinstance(model, torch.nn.Sequential)
    assert [name for name, _ in model.named_children()][:2] == ["conv1", "pool1"]
    assert callable(netspec.build)  # still the function after netspec.build (the module) loaded
    model = netspec.build(ROOT / "specs" / "vgg16.yaml", (3, 32, 32))
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)


def test_api_build_raises_with_every_error():
    path = ROOT / "specs" / "broken" / "several_errors.yaml"
    with pytest.raises(SpecError) as raised:
        netspec.build(path)
    expected = netspec.check(path).errors
    assert raised.value.diagnostics == expected and len(expected) == 5
    assert str(raised.value) == "\n".join(d.format() for d in expected)
    with pytest.raises(SpecError) as raised:
        netspec.build("netspec: 1\ninput: [3\n")
    assert raised.value.diagnostics[0].message.startswith("invalid YAML")


# ---------------------------------------------------------------- schema and names


def test_committed_schema_is_generated():
    from netspec.pipeline import schema

    committed = json.loads((ROOT / "schemas" / "netspec.schema.json").read_text(encoding="utf-8"))
    assert committed == schema.generate(), "run `netspec schema --write` and commit the result"
    assert (ROOT / "schemas" / "netspec.schema.json").read_text(encoding="utf-8") == \
        schema.dumps(schema.generate())
    # the file `netspec schema --write` writes and `check` reads is this one
    assert schema.SCHEMA_FILE == (ROOT / "schemas" / "netspec.schema.json").resolve()


def torch_refuses(name: str) -> bool:
    from torch import nn

    try:
        nn.Sequential().add_module(name, nn.ReLU())
    except KeyError:
        return True
    return False


def netspec_refuses(name: str) -> bool:
    result = netspec.check(HEAD + f"  - ReLU:\n    name: {name}\n")
    return any(d.line == 5 and d.col == 11 for d in result.errors)


def test_module_attributes_match_torch():
    from torch import nn

    from netspec.core.names import MODULE_ATTRIBUTES

    names = [n for n in dir(nn.Sequential()) if n.isidentifier()]
    public = {n for n in names if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES, sorted(public - MODULE_ATTRIBUTES)
    # names torch accepts as children, for the other direction
    fine = ["conv1", "features", "classifier", "fc", "relu", "head", "block_1", "layer0",
            "Conv", "x"]
    for name in names + fine:
        assert netspec_refuses(name) == torch_refuses(name), name
    assert all(torch_refuses(n) for n in names)
