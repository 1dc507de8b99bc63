"""Issue 10, the check stage: each reproducer that made `netspec check` print a traceback, or
say ok to a spec that later commands could not handle, is a positioned error now, through
the Python API and through the CLI (exit 1, no traceback)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.core.diagnostics import number_text

ROOT = Path(__file__).resolve().parents[2]
HEAD = "netspec: 1\ninput: [3, 8, 8]\n"
LINE = re.compile(r"^(.+):(\d+):(\d+): (error|warning|note): (.+)$")


def _embeddings(count: int) -> str:
    return ("netspec: 1\ninput: {shape: [100], dtype: int64}\nlayers:\n"
            + "  - Embedding: {num_embeddings: 10, embedding_dim: 100}\n" * count
            + "  - Flatten\n  - Linear: {in_features: 5, out_features: 3}\n")


# name -> (spec text, every error as (line, col, a fragment of its message))
CASES: dict[str, tuple[str, list[tuple[int, int, str]]]] = {
    # section 1: no traceback
    "int_key_in_entry": (HEAD + "layers:\n  - ReLU:\n    0: x\n",
                         [(5, 5, "a mapping key must be a name, got '0', which YAML reads as "
                                 "a number")]),
    "int_keys_top_block_params_train": (
        HEAD + "7: x\nblocks:\n  B:\n    params: {1: 2}\n    layers:\n      - ReLU\n"
        "layers:\n  - B: {2: 3}\ntrain:\n  3: 4\n",
        [(3, 1, "got '7'"), (6, 14, "got '1'"), (10, 9, "got '2'"), (12, 3, "got '3'")]),
    "bool_and_null_keys": (HEAD + "layers:\n  - ReLU: {yes: 1, ~: 2}\n",
                           [(4, 12, "got 'yes', which YAML reads as true or false"),
                            (4, 20, "got '~', which YAML reads as null")]),
    "integer_of_5000_digits": (HEAD + "layers:\n  - Linear: {out_features: " + "9" * 5000 + "}\n",
                               [(4, 28, "the number 999999999999... (5,000 characters) is too "
                                        "large")]),
    "hex_integer_beyond_64_bits": (HEAD + "layers:\n  - Linear: {out_features: 0x1"
                                   + "0" * 16 + "}\n",
                                   [(4, 28, "the number 0x10000000000000000 is too large")]),
    "name_is_a_mapping": (HEAD + "layers:\n  - ReLU:\n    name: {a: 1}\n  - ReLU:\n    name: r\n"
                          "  - ReLU:\n    from: r\n",
                          [(5, 11, "name must be a string, got {\"a\": 1}")]),
    "from_item_is_a_mapping": (HEAD + "layers:\n  - ReLU:\n    name: r\n  - Add:\n"
                               "    from: [{a: 1}, r]\n  - ReLU:\n    from: {a: 1}\n",
                               [(7, 12, "from.0 must be a string"),
                                (9, 11, "from must be a string or a list")]),
    "first_scalar_in_block": (HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n"
                              "        repeat: 2\n        first: x\nlayers:\n  - B\n",
                              [(8, 16, "layer 0 (ReLU, in block B): first must be a mapping")]),
    "from_empty_in_block": (HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n"
                            "        from: []\nlayers:\n  - B\n",
                            [(7, 15, "from must have at least 1 entry, got 0")]),
    "if_false_from_itself_in_block": (
        HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n        name: a\n        if: false\n"
        "        from: a\nlayers:\n  - B\n",
        [(9, 15, "layer a (ReLU, in block B): from: an entry cannot take its own output")]),
    "if_false_from_itself": (HEAD + "layers:\n  - ReLU\n  - ReLU:\n    name: a\n    if: false\n"
                             "    from: a\n",
                             [(8, 11, "from: an entry cannot take its own output")]),
    # each Embedding adds a dimension of 100: the 10th output is 10^20 elements
    "embedding_2500_times": (_embeddings(2500),
                             [(line, 5, f"layer {line - 4} (Embedding): takes integer indices")
                              for line in range(5, 13)]
                             + [(12, 5, "layer 8 (Embedding): its output, "
                                        + "×".join(["100"] * 10) + ", has 1e20 elements (4e20 "
                                        "bytes of float32), more than PyTorch can allocate")]),
    "embedding_repeated_2500_times": (
        "netspec: 1\ninput: {shape: [100], dtype: int64}\nlayers:\n  - Embedding: "
        "{num_embeddings: 10, embedding_dim: 100}\n    repeat: 2500\n  - Flatten\n"
        "  - Linear: {in_features: 5, out_features: 3}\n",
        [(4, 5, f"layer 0.{k} (Embedding): takes integer indices") for k in range(1, 9)]
        + [(4, 5, "layer 0.8 (Embedding): its output, " + "×".join(["100"] * 10)
           + ", has 1e20 elements")]),
    # section 2: check refuses what later commands cannot handle
    "block_body_from_not_a_name": (
        HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n        name: r\n      - Add:\n"
        "        from: [r, \"not a name\"]\nlayers:\n  - B\n  - B\n",
        [(9, 19, "layer 1 (Add, in block B): from: \"not a name\" is not a name")]),
    "block_body_empty_entry": (HEAD + "blocks:\n  B:\n    layers:\n      - ReLU\n      - {}\n"
                               "layers:\n  - B\n  - B\n",
                               [(7, 9, "layer 1 (in block B): empty layer entry")]),
    "block_body_unknown_key": (HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n"
                               "        nmae: r\nlayers:\n  - B\n",
                               [(7, 9, "unknown key 'nmae' in a layer entry (did you mean "
                                       "'name'?)")]),
    "repeat_name_without_number": (HEAD + "layers:\n  - ReLU:\n"
                                   "    repeat: {count: 2, name: same}\n",
                                   [(5, 30, "repeat: name \"same\" names copies 0 and 1 both "
                                            "'same'; put {n}")]),
    "repeat_name_with_a_dot": (HEAD + "layers:\n  - ReLU:\n"
                               "    repeat: {count: 2, name: \"a.b{n}\"}\n",
                               [(5, 30, "makes the child name \"a.b1\", which cannot name a "
                                        "module: it contains \".\"")]),
    "repeat_name_module_attribute": (HEAD + "layers:\n  - ReLU:\n"
                                     "    repeat: {count: 1, name: training}\n",
                                     [(5, 30, "it is taken by nn.Module itself")]),
    "repeat_name_in_block": (HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n"
                             "        repeat: {count: 3, name: \"{n}x\"}\nlayers:\n  - B\n  - B\n",
                             [(7, 34, "makes the child name \"1x\", which cannot name a "
                                      "module: it starts with a digit")]),
    "name_taken_by_nn_module": (HEAD + "layers:\n  - ReLU:\n    name: training\n  - ReLU:\n"
                                "    name: cuda\n  - ReLU:\n    name: state_dict\n",
                                [(5, 11, "nn.Module.training"), (7, 11, "nn.Module.cuda"),
                                 (9, 11, "nn.Module.state_dict")]),
    "name_taken_by_graph_module": (
        HEAD + "layers:\n  - ReLU:\n    name: code\n  - ReLU:\n    name: graph\n  - Add:\n"
        "    from: [code, graph]\n    name: meta\n  - ReLU:\n    name: recompile\n",
        [(5, 11, "GraphModule.code"), (7, 11, "GraphModule.graph"),
         (10, 11, "GraphModule.meta"), (12, 11, "GraphModule.recompile")]),
    "name_taken_by_graph_module_in_block": (
        HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n        name: graph\n"
        "      - Add:\n        from: [input, graph]\nlayers:\n  - B\n",
        [(7, 15, "layer graph (ReLU, in block B): name 'graph' is taken by torch.fx.GraphModule")]),
    "first_unknown_argument": (HEAD + "layers:\n  - Conv2d: {out_channels: 4, kernel_size: 3}\n"
                               "    repeat: 2\n    first: {zzz: 1}\n",
                               [(6, 13, "layer 0 (Conv2d): first: unknown argument 'zzz' for "
                                        "Conv2d")]),
    "first_misspelt_argument_in_block": (
        HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n        repeat: 2\n"
        "        first: {inplac: true}\nlayers:\n  - B\n",
        [(8, 17, "first: unknown argument 'inplac' for ReLU (did you mean 'inplace'?)")]),
    "first_wrong_type": (HEAD + "layers:\n  - Conv2d: {out_channels: 3, kernel_size: 3, "
                         "padding: 1}\n    repeat: 2\n    first: {stride: x}\n",
                         [(6, 21, "first: stride must be an integer or a list of 2 integers, got "
                                  "\"x\"")]),
    "first_unknown_block_parameter": (
        HEAD + "blocks:\n  B:\n    params: {stride: 1}\n    layers:\n"
        "      - Conv2d: {out_channels: 3, kernel_size: 3, padding: 1, stride: stride}\n"
        "layers:\n  - B:\n    repeat: 2\n    first: {strid: 2}\n",
        [(11, 13, "first: unknown parameter 'strid' for block B (did you mean 'stride'?)")]),
    "first_without_repeat": (HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n"
                             "        first: {inplace: true}\nlayers:\n  - B\n",
                             [(7, 9, "layer 0 (ReLU, in block B): first: sets arguments of the "
                                     "first copy of a repeat, and this entry has no repeat:")]),
    # section 5: limits
    "repeat_expression_beyond_cap": (HEAD + "layers:\n  - ReLU:\n    repeat: \"2**20\"\n",
                                     [(5, 13, "repeat 1,048,576 is absurdly large (at most "
                                              "10,000)")]),
    "repeat_literal_beyond_cap_in_block": (
        HEAD + "blocks:\n  B:\n    layers:\n      - ReLU:\n        repeat: 20000\nlayers:\n  - B\n",
        [(7, 17, "layer 0 (ReLU, in block B): repeat 20,000 is absurdly large")]),
    "repeat_parameter_beyond_cap": (
        HEAD + "blocks:\n  B:\n    params: {n: 20000}\n    layers:\n      - ReLU:\n"
        "        repeat: n\nlayers:\n  - B\n",
        [(8, 17, "repeat 20,000 is absurdly large")]),
    "linear_beyond_int64": ("netspec: 1\ninput: [2147483647, 84000000]\nlayers:\n  - Flatten\n"
                            "  - Linear: {out_features: 2147483647}\n",
                            [(5, 5, "layer 1 (Linear): has 3.87e26 parameters (1.54e27 bytes "
                                    "of float32), more than PyTorch can allocate (a tensor "
                                    "holds at most 2**63-1 = 9,223,372,036,854,775,807 bytes)")]),
    "input_beyond_int64": ("netspec: 1\ninput: [2147483647, 2147483647, 4]\nlayers:\n  - ReLU\n",
                           [(2, 8, "input: one sample of 2147483647×2147483647×4 has 1.84e19 "
                                   "elements (7.37e19 bytes of float32)")]),
    "output_beyond_int64": (HEAD + "layers:\n  - Upsample: {scale_factor: 2000000000}\n",
                            [(4, 5, "its output, 3×16000000000×16000000000, has 7.68e20 "
                                    "elements")]),
}


def _matches(errors: list[tuple[int, int, str]], expected: list[tuple[int, int, str]]) -> None:
    assert len(errors) == len(expected), errors
    for (line, col, message), (want_line, want_col, fragment) in zip(errors, expected,
                                                                       strict=True):
        assert (line, col) == (want_line, want_col), (line, col, message)
        assert fragment in message, message


@pytest.mark.parametrize("name", list(CASES))
def test_python_api(name: str):
    text, expected = CASES[name]
    result = netspec.check(text)
    assert not result.ok
    _matches([(d.line, d.col, d.message) for d in result.errors], expected)
    with pytest.raises(netspec.SpecError):
        netspec.build(result)


@pytest.fixture(scope="module")
def cli_output(tmp_path_factory) -> dict[str, tuple[int, list[str]]]:
    """`netspec check` on each case (one process per case would take a minute)."""
    folder = tmp_path_factory.mktemp("cases")
    out = {}
    for name, (text, _) in CASES.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name in CASES:
        out[name] = (folder / f"{name}.yaml").as_posix()
    proc = subprocess.run([sys.executable, "-m", "netspec", "check", *out.values()],
                          capture_output=True, text=True, encoding="utf-8", timeout=300,
                          check=False, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    return {name: [line for line in lines if line.startswith(path + ":")]
            for name, path in out.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_cli(name: str, cli_output):
    found = []
    *diagnostics, summary = cli_output[name]
    for line in diagnostics:
        match = LINE.match(line)
        assert match, line
        if match.group(4) == "error":
            found.append((int(match.group(2)), int(match.group(3)), match.group(5)))
    _matches(found, CASES[name][1])
    assert summary.endswith(f": {len(found)} error{'s' if len(found) > 1 else ''}")


def test_cli_exit_code_for_one_reproducer(tmp_path):
    spec = tmp_path / "int_key.yaml"
    spec.write_text(CASES["int_key_in_entry"][0], encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "netspec", "check", str(spec)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines()[0].startswith(f"{spec}:5:5: error: a mapping key")


def test_load_one_line_text_longer_than_a_file_name():
    """netspec.load(text) tried a long one-line text (a JSON spec) as a path: OSError
    'File name too long'."""
    layers = [{"Conv2d": {"out_channels": 8, "kernel_size": 3}}] + [{"ReLU": None}] * 40
    text = json.dumps({"netspec": 1, "input": [3, 8, 8], "layers": layers})
    assert len(text.encode()) > 255 and "\n" not in text
    spec = netspec.load(text)
    assert spec.file == "<spec>"
    result = netspec.check(text)
    assert result.ok and result.output_shape == (8, 6, 6)


@pytest.mark.parametrize("source", ["x" * 5000, "a\0b"])
def test_path_probing_never_raises(source: str):
    result = netspec.check(source)  # no file name can be this: read as YAML text
    assert not result.ok and result.errors[0].line == 1


@pytest.mark.parametrize("source", ["/" * 300 + "spec.yaml", "missing/" * 40 + "spec.yaml"])
def test_a_file_name_that_names_no_file_is_no_such_file(source: str):
    """A spec file's name (issue 13: netspec.check("tudui.yml")), however long, is looked
    for, not read as YAML; probing it raises nothing but FileNotFoundError."""
    with pytest.raises(FileNotFoundError, match="no such file"):
        netspec.check(source)


def test_load_still_reads_files(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(HEAD + "layers:\n  - ReLU\n", encoding="utf-8")
    assert netspec.load(str(spec)).file == str(spec)
    assert netspec.check(str(spec)).ok and netspec.check(spec).ok


def test_number_text():
    assert number_text(0) == "0"
    assert number_text(1_234_567) == "1,234,567"
    assert number_text(2**63 - 1) == "9.22e18"
    assert number_text(10**18) == "1e18"
    assert number_text(-(10**22)) == "-1e22"
    assert number_text(387 * 10**24) == "3.87e26"
    assert number_text(4**7000) == "2.62e4214"  # str() of it raises ValueError


def test_repeat_names_build_as_declared():
    """A valid repeat.name pattern: the children are named as check says (torch's truth)."""
    text = HEAD + "layers:\n  - Conv2d: {out_channels: 3, kernel_size: 1}\n" \
        "    name: convs\n    repeat: {count: 3, name: \"conv{n}\"}\n" \
        "  - ReLU:\n    repeat: {count: 2, name: \"{i}\"}\n"
    result = netspec.check(text)
    assert result.ok, [d.format() for d in result.errors]
    assert [c.name for c in result.layers[0].children] == ["conv1", "conv2", "conv3"]
    model = netspec.build(result)
    keys = list(model.state_dict())
    assert keys == [f"convs.conv{n}.{p}" for n in (1, 2, 3) for p in ("weight", "bias")]
    assert [n for n, _ in model.get_submodule("1").named_children()] == ["0", "1"]


def test_graph_module_names_are_fine_in_a_chain():
    """'code' is refused only where the list is built as a GraphModule; a chain is an
    nn.Sequential, where torch takes it."""
    result = netspec.check(HEAD + "layers:\n  - ReLU:\n    name: code\n  - ReLU:\n"
                           "    name: graph\n")
    assert result.ok
    model = netspec.build(result)
    assert type(model).__name__ == "Sequential" and hasattr(model, "graph")


def _graph_module_breaks(name: str) -> bool:
    """Whether a GraphModule with a child called ``name`` fails to be built, run, or keep
    that child under its name."""
    import torch
    from torch import fx, nn

    root = nn.Module()
    root.add_module(name, nn.ReLU())
    graph = fx.Graph()
    graph.output(graph.call_module(name, (graph.placeholder("x"),)))
    try:
        module = fx.GraphModule(root, graph)
        out = module(-torch.ones(2))
    except Exception:  # any failure is what netspec must prevent
        return True
    return not isinstance(getattr(module, name), nn.ReLU) or float(out.sum()) != 0.0


def test_graph_module_attributes_match_torch():
    from torch import fx, nn

    from netspec.core.names import GRAPH_MODULE_ATTRIBUTES

    graph_module = {n for n in dir(fx.GraphModule(nn.Module(), fx.Graph()))
                    if not n.startswith("_")}
    assert GRAPH_MODULE_ATTRIBUTES == graph_module - set(dir(nn.Module())), sorted(
        GRAPH_MODULE_ATTRIBUTES ^ (graph_module - set(dir(nn.Module()))))
    for name in sorted(GRAPH_MODULE_ATTRIBUTES):
        assert _graph_module_breaks(name), name
    for name in ("conv1", "x", "relu", "head"):
        assert not _graph_module_breaks(name), name


def test_check_imports_no_torch():
    code = ("import sys, netspec\n"
            f"r = netspec.check({CASES['name_taken_by_graph_module'][0]!r})\n"
            "assert not r.ok\n"
            "assert 'torch' not in sys.modules, 'check imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=ROOT)


def test_table_of_a_spec_that_does_not_validate_lists_its_errors():
    """CheckResult.table() of a document that never reached inference (no network) was an
    AttributeError; it is the positioned messages."""
    result = netspec.check("netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - Sub\n    from: [a, b]\n")
    assert not result.ok and result.network is None
    assert result.table() == "\n".join(d.format() for d in result.diagnostics)
    assert result.table().startswith("<spec>:")
