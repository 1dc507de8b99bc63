"""netspec render and netspec report: the DOT (nodes, edges, shapes on edges, clusters,
--depth, --compact, errors), every zoo spec laid out by the real Graphviz `dot`, the
missing-dot path, no torch import, and the HTML report in headless Chromium."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from netspec.emit import render
from netspec.emit.render import ERROR_LINE, FAMILY_COLOURS, UNKNOWN_TEXT, to_dot

ROOT = Path(__file__).resolve().parents[2]
ZOO = sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
BROKEN = ROOT / "specs" / "broken"
DOT = shutil.which("dot")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_dot = pytest.mark.skipif(
    DOT is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")

NODE = re.compile(r'^\t+("(?:[^"\\]|\\.)*"|[^\s\[]+) \[(.*)\]$', re.M)
EDGE = re.compile(r'^\t+("(?:[^"\\]|\\.)*"|\S+) -> ("(?:[^"\\]|\\.)*"|\S+)(?: \[(.*)\])?$', re.M)


def unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name


def nodes(dot: str) -> dict[str, str]:
    """node name -> its attribute text (the label and the style)."""
    return {unquote(m[1]): m[2] for m in NODE.finditer(dot)
            if not m[1].startswith(("graph", "node", "edge", '"@title.'))}


def edges(dot: str) -> list[tuple[str, str, str]]:
    """(tail, head, label) of every edge."""
    out = []
    for m in EDGE.finditer(dot):
        if "style=invis" in (m[3] or ""):
            continue  # keeps a cluster's title beside its first box
        label = re.search(r'label=" ?([^"]*?) ?"', m[3] or "")
        out.append((unquote(m[1]), unquote(m[2]), label[1] if label else ""))
    return out


def clusters(dot: str) -> list[str]:
    return re.findall(r"subgraph (\S+) \{", dot)


def text(attrs: str) -> str:
    """The words of a node's label, its wrapped lines joined again."""
    label = re.sub(r"<[^>]*>", " ", attrs.split(" tooltip=")[0])
    return " ".join(label.split())


def layer_nodes(dot: str) -> dict[str, str]:
    return {k: v for k, v in nodes(dot).items() if not k.startswith("@")}


# ------------------------------------------------------------------ the DOT


def test_chain_nodes_edges_and_shapes_on_edges():
    dot = to_dot(ROOT / "specs/zoo/tutorial_cifar10.yaml")
    names = list(layer_nodes(dot))
    assert names == ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "flatten", "fc1",
                     "fc2"]
    assert set(nodes(dot)) == {*names, "@input", "@output"}
    chain = ["@input", *names, "@output"]
    assert [(a, b) for a, b, _ in edges(dot)] == list(pairwise(chain))
    shapes = [label for _, _, label in edges(dot)]
    assert shapes == ["3×32×32", "32×32×32", "32×16×16", "32×16×16", "32×8×8", "64×8×8",
                      "64×4×4", "1024", "64", "10"]
    conv1 = nodes(dot)["conv1"]
    assert "<B>Conv2d</B>" in conv1 and "5×5, out 32, pad 2" in conv1
    assert "32×32×32 · 2,432 params" in conv1  # output shape and parameters in the box
    assert "in 1024, out 64" in nodes(dot)["fc1"]
    assert "145,578 parameters" in dot  # the caption
    # colours by family, the same in every diagram
    fill, line = FAMILY_COLOURS["conv"]
    assert f'fillcolor="{fill}"' in conv1 and f'color="{line}"' in conv1
    assert f'fillcolor="{FAMILY_COLOURS["pool"][0]}"' in nodes(dot)["pool1"]
    assert f'fillcolor="{FAMILY_COLOURS["linear"][0]}"' in nodes(dot)["fc2"]


def test_branches_merges_and_clusters_resnet18():
    dot = to_dot(ROOT / "specs/zoo/resnet18.yaml")
    names = clusters(dot)
    # 4 repeats, 8 BasicBlocks, 3 downsample groups
    assert len(names) == 15
    assert sum("downsample" in n for n in names) == 3
    ns = nodes(dot)
    adds = [n for n in ns if n.endswith(".add")]
    assert len(adds) == 8 and all('label="+"' in ns[a] for a in adds)
    into = {}
    for a, b, label in edges(dot):
        into.setdefault(b, []).append((a, label))
    # every Add takes two branches, each edge with its shape
    assert all(len(into[a]) == 2 for a in adds)
    assert sorted(into["layer1.0.add"]) == [("layer1.0.bn2", "64×56×56"),
                                            ("maxpool", "64×56×56")]  # identity shortcut
    assert sorted(into["layer2.0.add"]) == [("layer2.0.bn2", "128×28×28"),
                                            ("layer2.0.downsample.1", "128×28×28")]
    assert into["layer2.0.downsample.0"] == [("layer1.1.relu2", "64×56×56")]
    # every edge carries a shape; every layer is one node
    assert all(label for _, _, label in edges(dot))
    assert len(layer_nodes(dot)) == 4 + 8 * 7 + 3 * 2 + 3
    # the cluster says what it is: name, block type and count, parameters, arguments
    assert "<B>layer2</B>  BasicBlock ×2" in dot and "first: stride 2" in dot
    titles = re.findall(r'"@title\.([^"]+)" \[label=', dot)
    assert len(titles) == 15 and "layer2.0.downsample" in titles


def test_concat_branches_googlenet():
    dot = to_dot(ROOT / "specs/zoo/googlenet.yaml")
    into = {}
    for a, b, _ in edges(dot):
        into.setdefault(b, []).append(a)
    assert sorted(into["inception3a.concat"]) == [
        "inception3a.branch1.relu", "inception3a.branch2.1.relu",
        "inception3a.branch3.1.relu", "inception3a.branch4.1.relu"]
    assert "dim 1" in nodes(dot)["inception3a.concat"]


def test_depth_collapses_blocks_and_groups():
    resnet50 = ROOT / "specs/zoo/resnet50.yaml"
    top = to_dot(resnet50, depth=1)
    boxes = layer_nodes(top)
    assert len(boxes) == 11  # conv1 bn1 relu maxpool layer1-4 avgpool flatten fc: a dozen
    assert clusters(top) == []
    assert "shape=box3d" in boxes["layer3"] and "Bottleneck ×6" in boxes["layer3"]
    assert "1024×14×14 · 7.1M params" in boxes["layer3"]
    shapes = {(a, b): label for a, b, label in edges(top)}
    assert shapes[("layer2", "layer3")] == "512×28×28"
    two = to_dot(resnet50, depth=2)
    assert len(clusters(two)) == 4
    assert len(layer_nodes(two)) == 7 + 3 + 4 + 6 + 3
    full = to_dot(resnet50)
    assert len(layer_nodes(full)) > 150  # every conv
    # the same at depth 3 as at full depth for a network three levels deep
    assert to_dot(resnet50, depth=4) == full


def test_compact_fuses_conv_bn_relu():
    resnet18 = ROOT / "specs/zoo/resnet18.yaml"
    dot = to_dot(resnet18, compact=True)
    ns = layer_nodes(dot)
    fused = [v for v in ns.values() if "Conv2d + BN + ReLU" in v]
    assert len(fused) == 1 + 8  # the stem and every block's conv1
    assert sum("<B>Conv2d + BN</B>" in v for v in ns.values()) == 8 + 3  # conv2, downsample
    assert not any("<B>BatchNorm2d</B>" in v for v in ns.values())
    assert len(ns) < 0.6 * len(layer_nodes(to_dot(resnet18)))
    # the fused box keeps the conv's arguments and sums the parameters: 9,408 + 128
    assert "7×7, out 64, stride 2, pad 3" in ns["conv1"] and "9,536 params" in ns["conv1"]
    # a block that is one Conv+BN+ReLU chain (GoogLeNet's BasicConv2d) is one box
    google = to_dot(ROOT / "specs/zoo/googlenet.yaml", compact=True)
    assert len(clusters(google)) < len(clusters(to_dot(ROOT / "specs/zoo/googlenet.yaml")))
    assert "Conv2d + BN + ReLU</B>  <FONT COLOR=\"#555555\">conv1" in google
    # pre-activation (BN + ReLU + Conv) in DenseNet
    dense = to_dot(ROOT / "specs/zoo/densenet121.yaml", compact=True)
    assert "BN + ReLU + Conv2d" in dense


def test_rankdir():
    assert "rankdir=LR" in to_dot(ROOT / "specs/zoo/lenet5.yaml", rankdir="LR")
    assert "rankdir=TB" in to_dot(ROOT / "specs/zoo/lenet5.yaml")
    with pytest.raises(ValueError):
        to_dot(ROOT / "specs/zoo/lenet5.yaml", rankdir="XY")
    with pytest.raises(ValueError):
        to_dot(ROOT / "specs/zoo/lenet5.yaml", depth=0)


def test_errors_marked_red_with_their_message():
    dot = to_dot(BROKEN / "several_errors.yaml")
    red = {k: v for k, v in layer_nodes(dot).items() if f'color="{ERROR_LINE}"' in v}
    assert len(red) == 4
    words = " ".join(text(v) for v in red.values())
    assert "in_channels 32 does not match the 16 channels coming in" in words
    assert "is not a module name" in words
    assert "missing required argument &#x27;out_features&#x27;" in words
    assert "5 errors" in dot


def test_unknown_shapes_after_an_error_are_grey():
    dot = to_dot(BROKEN / "kernel_too_large.yaml")
    ns = layer_nodes(dot)
    assert f'color="{ERROR_LINE}"' in ns["4"]
    assert "kernel 7×7 is larger than the padded input 5×5" in text(ns["4"])
    for later in ("5", "6"):
        assert f'color="{UNKNOWN_TEXT}"' in ns[later] and "dashed" in ns[later]
    labels = {(a, b): label for a, b, label in edges(dot)}
    assert labels[("3", "4")] == "32×5×5" and labels[("4", "5")] == "?"


def test_error_in_a_block_marks_the_block():
    dot = to_dot(BROKEN / "block_missing_param.yaml")
    box = layer_nodes(dot)["layer1"]
    assert f'color="{ERROR_LINE}"' in box and "needs parameter &#x27;planes&#x27;" in text(box)
    merge = layer_nodes(to_dot(BROKEN / "branch_add_mismatch.yaml"))["add"]
    assert "cannot add 128×28×28 from &#x27;bn2&#x27; and 64×56×56" in text(merge)


def test_unreadable_yaml_is_one_red_box():
    dot = to_dot(BROKEN / "indentation.yaml")
    assert list(nodes(dot)) == ["@error"]
    assert "invalid YAML" in dot and ERROR_LINE in dot


def test_same_spec_same_dot():
    spec = ROOT / "specs/zoo/googlenet.yaml"
    once = to_dot(spec, compact=True)
    assert once == to_dot(spec, compact=True)
    # and in other processes, whatever the hash seed
    code = ("import sys; from netspec.emit.render import to_dot; "
            "sys.stdout.write(to_dot(sys.argv[1], compact=True))")
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, str(spec)], env=env,
                             capture_output=True, text=True, check=True).stdout
        assert out == once


def test_no_torch_import():
    code = ("import sys; from netspec.emit.render import to_dot; from netspec.emit.report import "
            "html_report; to_dot(sys.argv[1]); html_report(sys.argv[1]); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs/zoo/resnet18.yaml")],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------ the real dot


@needs_dot
@pytest.mark.parametrize("spec", ZOO, ids=[p.stem for p in ZOO])
def test_every_zoo_spec_renders_to_svg_and_png(spec, tmp_path):
    from PIL import Image

    g = render.graph(spec)
    svg = render.layout(g, "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    titles = len(re.findall(r'"@title\.[^"]+" \[label=', g.source))
    assert svg.count('class="node"') == len(nodes(g.source)) + titles
    png = render.layout(g, "png")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 300
    assert len(set(image.convert("L").resize((64, 64)).tobytes())) > 2  # not blank


@needs_dot
def test_cli_render_formats(tmp_path):
    spec = str(ROOT / "specs/zoo/lenet5.yaml")
    for name, magic in (("n.svg", b"<?xml"), ("n.png", b"\x89PNG"), ("n.pdf", b"%PDF"),
                        ("n.dot", b"digraph")):
        run = _netspec("render", spec, "-o", str(tmp_path / name), "--depth", "1")
        assert run.returncode == 0, run.stderr
        assert (tmp_path / name).read_bytes().startswith(magic)
    run = _netspec("render", spec, "-o", str(tmp_path / "x.out"), "--format", "svg",
                   "--rankdir", "LR", "--compact")
    assert run.returncode == 0 and (tmp_path / "x.out").read_bytes().startswith(b"<?xml")
    bad = _netspec("render", spec, "-o", str(tmp_path / "x.jpg"))
    assert bad.returncode == 2 and ".svg, .png, .pdf or .dot" in bad.stderr
    assert _netspec("render", spec, "-o", str(tmp_path / "y.svg"), "--depth", "0"
                    ).returncode == 2
    missing = _netspec("render", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "z.svg"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@needs_dot
def test_cli_render_broken_spec_exit_1(tmp_path):
    out = tmp_path / "broken.svg"
    run = _netspec("render", str(BROKEN / "tutorial_in_features.yaml"), "-o", str(out))
    assert run.returncode == 1
    assert "13:27: error" in run.stderr and "1 error marked red" in run.stderr
    assert ERROR_LINE in out.read_text()
    run = _netspec("render", str(BROKEN / "indentation.yaml"), "-o", str(tmp_path / "y.svg"))
    assert run.returncode == 1 and "invalid YAML" in (tmp_path / "y.svg").read_text()


def test_missing_dot_writes_the_dot_and_says_how_to_install(tmp_path):
    out = tmp_path / "net.svg"
    env = {**os.environ, "PATH": str(tmp_path / "empty")}  # no dot on this PATH
    run = _netspec("render", str(ROOT / "specs/zoo/resnet18.yaml"), "-o", str(out), env=env)
    assert run.returncode == 2
    assert not out.exists()
    dot_file = tmp_path / "net.dot"
    assert dot_file.read_text().startswith("digraph ResNet18")
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install"):
        assert hint in run.stderr
    assert str(dot_file) in run.stderr
    # the report still comes out, without the diagram but with the DOT text
    page = tmp_path / "r.html"
    run = _netspec("report", str(ROOT / "specs/zoo/lenet5.yaml"), "-o", str(page), env=env)
    assert run.returncode == 2 and "apt-get install graphviz" in run.stderr
    assert "digraph" in page.read_text()


def _netspec(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


# ------------------------------------------------------------------ the report

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?"""
                      r"""(?:https?:)?//|@import|<link\b|<script\b[^>]*\bsrc""", re.I)


@needs_dot
def test_report_is_self_contained(tmp_path):
    out = tmp_path / "report.html"
    run = _netspec("report", str(ROOT / "specs/zoo/resnet18.yaml"), "-o", str(out),
                   "--depth", "2")
    assert run.returncode == 0, run.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert not EXTERNAL.search(page)
    assert "<!DOCTYPE svg" not in page  # the SVG's external DTD is left out
    assert "11,689,512" in page and "check passed" in page
    assert "layer4" in page and "BasicBlock" in page  # the summary table
    bad = tmp_path / "bad.html"
    run = _netspec("report", str(BROKEN / "several_errors.yaml"), "-o", str(bad))
    assert run.returncode == 1
    text = bad.read_text()
    assert "5 errors" in text and "10:27: error" in text and not EXTERNAL.search(text)


@needs_dot
@pytest.mark.skipif(CHROMIUM is None,
                    reason="headless Chromium is not installed (apt-get install chromium)")
def test_report_in_headless_chromium(tmp_path):
    from PIL import Image

    out = tmp_path / "report.html"
    assert _netspec("report", str(ROOT / "specs/zoo/googlenet.yaml"), "-o", str(out),
                    "--compact").returncode == 0
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--log-level=0", "--v=0", f"--screenshot={shot}", "--window-size=1200,900",
         out.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # no console errors (or messages at all)
    assert shot.exists(), run.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 900)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, boxes: not one colour
    # the diagram's family colours are on screen (the stem conv's blue box)
    small = image.resize((300, 225))
    assert len(small.getcolors(maxcolors=1 << 16) or []) > 20
