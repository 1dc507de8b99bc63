"""netspec codegen: generated PyTorch files are equivalent to netspec.build, formatted,
lint-clean, deterministic, safe against hostile specs, and written without torch.

Equivalence runs in one fresh Python process (torch imported once there): for every spec in
specs/zoo and specs/ and every style it supports, the generated file is imported from disk,
built, and must have netspec.build's state_dict keys and shapes, load its weights strictly
and give the same outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netspec import check
from netspec.core.diagnostics import SpecError
from netspec.emit.codegen import STYLES, CodegenError, StyleError, generate

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs" / "zoo").glob("*.yaml")) + sorted((ROOT / "specs").glob("*.yaml"))
GOLDEN = ROOT / "tests" / "golden" / "codegen_tutorial_cifar10_class.py"
BRANCHING = {"resnet18", "resnet34", "resnet50", "googlenet", "densenet121", "mobilenet_v2",
             "squeezenet1_1", "unet", "unet_padded", "efficientnet_b0",
             "mnasnet1_0", "regnet_y_400mf", "shufflenet_v2_x1_0", "vit_b_16",
             "convnext_tiny", "pvt_v2_b0", "maxvit_t", "swin_t"}


def spec_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def small_input(path: Path) -> list[int]:
    """The smallest square input the network takes (forward passes stay cheap; the modules
    do not depend on the input size), else the spec's own."""
    result = check(path)
    shape = list(result.network.input_shape)
    if len(shape) == 3 and result.network.input_dtype == "float32":
        for size in (32, 48, 64, 96, 128, 160, 188, 224):
            if size < shape[1] and check(path, (shape[0], size, size)).ok:
                return [shape[0], size, size]
    return shape


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """spec id -> style -> the generated file (styles that cannot express it left out)."""
    out_dir = tmp_path_factory.mktemp("codegen")
    files: dict[str, dict[str, Path]] = {}
    for k, spec in enumerate(SPECS):
        files[spec_id(spec)] = {}
        for style in STYLES:
            try:
                source = generate(spec, style)
            except StyleError:
                continue
            file = out_dir / f"m{k}_{style.replace('-', '_')}.py"
            file.write_text(source, encoding="utf-8")
            files[spec_id(spec)][style] = file
    return files


EQUIVALENCE = textwrap.dedent(
    """
    import importlib.util, json, sys
    import torch
    import netspec

    torch.manual_seed(0)
    torch.set_num_threads(1)
    report = {}
    for job in json.loads(sys.argv[1]):
        ref = netspec.build(job["spec"]).eval()
        state = ref.state_dict()
        shapes = {k: list(v.shape) for k, v in state.items()}
        xs = [torch.randint(0, 10, (2, *shape)) if is_int else torch.randn(2, *shape)
              for shape, is_int in job["inputs"]]

        def flat(out):  # a dict or tuple of outputs as a list, one tensor as a list of one
            if isinstance(out, dict):
                return list(out.values())
            return list(out) if isinstance(out, (tuple, list)) else [out]

        with torch.no_grad():
            want = flat(ref(*[x.clone() for x in xs]))
        results = {}
        for style, file in job["files"].items():
            spec = importlib.util.spec_from_file_location(f"gen_{abs(hash(file))}", file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            with torch.device("meta"):
                model = getattr(module, job["name"])()
            got_shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
            keys_equal = list(got_shapes) == list(shapes)
            # a file whose names differ from build's (sequential gives them up, the others
            # name unnamed entries) says so and loads build's weights by position
            by_position = "model.load_state_dict(dict(zip(" in open(file).read()
            loaded = state if keys_equal else dict(zip(got_shapes, state.values()))
            model.load_state_dict(loaded, strict=True, assign=True)
            model.eval()
            with torch.no_grad():
                got = flat(model(*[x.clone() for x in xs]))
            results[style] = {
                "keys_equal": keys_equal,
                "keys": list(got_shapes),
                "says_by_position": by_position,
                "shapes_equal": list(got_shapes.values()) == list(shapes.values()),
                "out_shape": [list(g.shape) for g in got],
                "max_diff": max(float((g - w).abs().max()) for g, w in zip(got, want)),
                # by storage: load_state_dict(assign=True) gives a tied weight (one tensor
                # under two keys) two Parameter objects over the one storage
                "params": sum(p.numel() for p in {p.data_ptr(): p
                                                  for p in model.parameters()}.values()),
            }
        report[job["id"]] = {"want_shape": [list(w.shape) for w in want], "styles": results,
                             "keys": list(shapes),
                             "params": sum(p.numel() for p in ref.parameters())}
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def equivalence(generated) -> dict:
    jobs = []
    for spec in SPECS:
        result = check(spec)
        jobs.append({
            "id": spec_id(spec), "spec": str(spec), "name": result.network.name,
            "inputs": [[small_input(spec), result.network.input_dtype.startswith("int")]]
            if len(result.network.all_inputs) == 1 else  # several inputs: their own shapes
            [[list(i.shape), i.dtype.startswith("int")] for i in result.network.all_inputs],
            "files": {s: str(f) for s, f in generated[spec_id(spec)].items()},
        })
    run = subprocess.run([sys.executable, "-c", EQUIVALENCE, json.dumps(jobs)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_generated_file_is_equivalent_to_build(spec, equivalence, generated):
    report = equivalence[spec_id(spec)]
    styles = generated[spec_id(spec)]
    assert "class" in styles  # every spec can be written as a class
    if spec.stem in BRANCHING:
        assert set(styles) == {"class"}
    assert set(report["styles"]) == set(styles)
    for style, r in report["styles"].items():
        # build's keys, or the file says they differ and build's weights loaded by position
        assert r["keys_equal"] or r["says_by_position"], style
        pairs = list(zip(report["keys"], r["keys"], strict=True))
        if not r["keys_equal"] and style == "sequential":  # names given up: numbers
            assert all(b.split(".")[0].isdigit() and a.rpartition(".")[2] ==
                       b.rpartition(".")[2] for a, b in pairs), style
        elif not r["keys_equal"]:  # only top-level entries the spec leaves unnamed renamed
            assert all(a.split(".")[1:] == b.split(".")[1:] for a, b in pairs), style
            assert all(a == b or a.split(".")[0].isdigit() for a, b in pairs), style
        assert r["shapes_equal"], style
        assert r["params"] == report["params"], style
        assert r["out_shape"] == report["want_shape"], style
        assert r["max_diff"] <= 1e-6, (style, r["max_diff"])


def test_styles_each_chain_spec_supports(generated):
    # the sequential styles express every chain; plain nn.Sequential(...) gives names up
    assert set(generated["zoo/vgg16"]) == set(STYLES)
    assert set(generated["specs/vgg16"]) == set(STYLES)
    assert set(generated["zoo/text_lstm"]) == set(STYLES)


def test_golden_tutorial_cifar10():
    """The generated file a reviewer reads: tests/golden/codegen_tutorial_cifar10_class.py."""
    source = generate(ROOT / "specs" / "tutorial_cifar10.yaml", "class")
    if os.environ.get("NETSPEC_UPDATE_GOLDEN"):
        GOLDEN.write_text(source, encoding="utf-8")
    assert source == GOLDEN.read_text(encoding="utf-8")


def test_deterministic(generated):
    for spec in SPECS[:6] + [ROOT / "specs" / "zoo" / "resnet50.yaml"]:
        for style, file in generated[spec_id(spec)].items():
            again = generate(spec, style)
            assert again.encode() == file.read_bytes(), (spec, style)


def test_ruff_format_and_check_clean(generated, tmp_path):
    """ruff with the repository's configuration (line length 100) finds nothing to change
    or report in any generated file."""
    files = [str(f) for styles in generated.values() for f in styles.values()]
    config = str(ROOT / "pyproject.toml")
    ruff = [sys.executable, "-m", "ruff"]
    fmt = subprocess.run([*ruff, "format", "--check", "--config", config, *files],
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run([*ruff, "check", "--no-cache", "--config", config, *files],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_generated_source_shape(generated):
    resnet = generated["zoo/resnet18"]["class"].read_text(encoding="utf-8")
    assert "class BasicBlock(nn.Module):" in resnet
    assert "def __init__(self, in_channels, planes) -> None:" in resnet
    assert "out = bn2 + downsample" in resnet
    assert "BasicBlock(64, 128)" not in resnet and "BasicBlock2(64, 128)" in resnet
    unet = generated["zoo/unet"]["class"].read_text(encoding="utf-8")
    assert "def crop_to(" in unet and "torch.cat([out, up4], 1)" in unet
    assert "def crop_to(" not in resnet
    lstm = generated["zoo/text_lstm"]
    assert "[0]" in lstm["class"].read_text(encoding="utf-8")
    assert "class LSTMOutput(nn.LSTM):" in lstm["ordereddict"].read_text(encoding="utf-8")
    for styles in generated.values():
        for file in styles.values():
            text = file.read_text(encoding="utf-8")
            imports = [line for line in text.splitlines() if line.startswith(("import", "from"))]
            # torchvision's StochasticDepth is imported by design (ConvNeXt's blocks)
            assert set(imports) <= {"import torch", "from torch import nn",
                                    "from collections import OrderedDict",
                                    # EfficientNet's StochasticDepth is torchvision's module
                                    # GoogLeNet's outputs: a namedtuple, Any in eval
                                    "from collections import namedtuple",
                                    "from collections import OrderedDict, namedtuple",
                                    "from typing import Any",
                                    "from torchvision.ops import StochasticDepth"}
    tudui = generate(ROOT / "specs" / "zoo" / "tutorial_cifar10.yaml", "ordereddict")
    assert '("conv1", nn.Conv2d(3, 32, 5, padding=2)),  # -> 32×32×32' in tudui


def test_branching_spec_refused_by_sequential_styles():
    for style in ("sequential", "add-module", "ordereddict"):
        with pytest.raises(StyleError) as info:
            generate(ROOT / "specs" / "zoo" / "resnet18.yaml", style)
        message = str(info.value)
        assert "resnet18.yaml:" in message and "branches" in message
        assert "--style class" in message


def test_plain_sequential_gives_names_up_and_says_so():
    source = generate(ROOT / "specs" / "zoo" / "vgg16.yaml", "sequential")
    assert "(features is 0, avgpool is 1, flatten is 2, ...)" in source
    assert "model.load_state_dict(dict(zip(model.state_dict(), weights.values())))" in source
    assert "OrderedDict" not in source and "add_module" not in source


def test_bad_spec_and_unknown_style():
    with pytest.raises(SpecError) as info:
        generate(ROOT / "specs" / "broken" / "tutorial_in_features.yaml")
    assert "in_features 1000" in str(info.value)
    with pytest.raises(ValueError, match="unknown style"):
        generate(ROOT / "specs" / "lenet5.yaml", "functional")


# ---------------------------------------------------------------- hostile specs

HOSTILE_NAMES = ["x; import os", "__import__('os')", "a\nimport os", "conv1\n", "cоnv1",
                 "ｃｏｎｖ", "conv1 ", "os.system", "_private", "forward", "class", "1x"]


def hostile(**fields) -> str:
    name = fields.get("name", "Net")
    layer_name = fields.get("layer")
    lines = ["netspec: 1", f"name: {json.dumps(name)}", "input: [3, 8, 8]", "layers:",
             "  - Conv2d: {out_channels: 4, kernel_size: 3}"]
    if layer_name is not None:
        lines.append(f"    name: {json.dumps(layer_name)}")
    lines.append("  - Flatten")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("where", ["layer", "name"])
def test_hostile_names_refused(name, where, tmp_path):
    if where == "name" and name in ("_private", "forward"):
        name = name + "()"  # fine names for a class; a child may not take them
    text = hostile(**{where: name})
    for style in ("class", "ordereddict", "add-module"):
        with pytest.raises(SpecError) as info:
            generate(text, style)
        message = str(info.value)
        assert "<spec>:" in message or ":" in message
        assert "error" in message


def test_hostile_block_and_repeat_names_refused():
    text = textwrap.dedent("""\
        netspec: 1
        input: [3, 8, 8]
        blocks:
          B:
            params: {c: required}
            layers:
              - Conv2d: {out_channels: c, kernel_size: 1}
        layers:
          - B: {c: 4}
            name: stage
            repeat: {count: 2, name: "x; import os{n}"}
        """)
    with pytest.raises(SpecError, match="import os"):
        generate(text)


def test_block_name_with_a_line_break_refused():
    # check refuses it (names are matched whole); codegen checks class names again itself
    text = textwrap.dedent("""\
        netspec: 1
        input: [3, 8, 8]
        blocks:
          "B\\n":
            params: {c: required}
            layers:
              - Conv2d: {out_channels: c, kernel_size: 1}
        layers:
          - "B\\n": {c: 4}
        """)
    with pytest.raises((CodegenError, SpecError), match="block name"):
        generate(text)


def test_hostile_values_are_literals_or_refused(tmp_path):
    # a string argument must be one of the layer's enum values; anything else is refused
    text = textwrap.dedent("""\
        netspec: 1
        input: [3, 8, 8]
        layers:
          - Conv2d: {out_channels: 4, kernel_size: 3, padding_mode: "zeros'); import os; ('"}
        """)
    with pytest.raises(SpecError):
        generate(text)
    # numbers are rendered with repr: an inf becomes float("inf"), not code
    text = textwrap.dedent("""\
        netspec: 1
        name: Clamp
        input: [4]
        layers:
          - Hardtanh: {min_val: -.inf, max_val: .inf}
        """)
    source = generate(text)
    assert 'nn.Hardtanh(min_val=-float("inf"), max_val=float("inf"))' in source
    assert "import os" not in source


def test_file_name_is_escaped_in_the_docstring(tmp_path):
    path = tmp_path / 'a"""; import os; """.yaml'
    path.write_text(hostile(), encoding="utf-8")
    source = generate(path)
    assert '"""; import os' not in source
    compile(source, "generated.py", "exec")  # still valid Python: the name stays text
    doc = source.split('"""')[1]
    assert "import os" in doc  # inside the docstring, escaped


def test_class_names_that_would_shadow_the_file_are_refused():
    for name in ("torch", "nn", "OrderedDict", "LSTMOutput"):
        with pytest.raises(CodegenError, match="cannot name the generated class"):
            generate(hostile(name=name))


# ---------------------------------------------------------------- no torch


def test_codegen_runs_without_torch():
    code = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from netspec.emit.codegen import STYLES, StyleError, generate
        n = 0
        for spec in sorted(Path("specs/zoo").glob("*.yaml")):
            for style in STYLES:
                try:
                    generate(spec, style)
                    n += 1
                except StyleError:
                    pass
        assert "torch" not in sys.modules, "codegen imported torch"
        print(n)
        """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) >= 17


def test_cli(tmp_path):
    out = tmp_path / "model.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "netspec", "codegen"]
    run = subprocess.run([*cli, "specs/zoo/resnet18.yaml", "-o", str(out)],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr
    assert out.read_text(encoding="utf-8") == generate(ROOT / "specs/zoo/resnet18.yaml")
    run = subprocess.run([*cli, "specs/lenet5.yaml", "--style", "ordereddict"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 0 and "OrderedDict(" in run.stdout, run.stderr
    run = subprocess.run([*cli, "specs/zoo/resnet18.yaml", "--style", "sequential"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 1 and "resnet18.yaml:" in run.stderr and not run.stdout
    run = subprocess.run([*cli, "specs/broken/tutorial_in_features.yaml"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 1 and "tutorial_in_features.yaml:13:27: error" in run.stderr
    run = subprocess.run([*cli, "no/such/file.yaml"], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    assert run.returncode == 2 and "cannot read" in run.stderr
