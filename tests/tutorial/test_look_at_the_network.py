"""Looking at the network, as the tutorial student does: `netspec render` on the CIFAR-10
mistake (in_features written as 1000) and on U-Net.

The red box and the title count the layers as the spec writes them (check goes on past the
error with the 1024 features coming in; the picture must not show that corrected layer's
count as the one written); the legend names only colours the picture has; an unnamed box is
called what the error calls it ("layer 7"); U-Net is drawn as a U: the contracting path down
on the left, the expanding path up on the right, the skips across at the same height."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import netspec
from netspec.emit.render import ERROR_LINE, human, to_dot

ROOT = Path(__file__).resolve().parents[2]
MISTAKE = ROOT / "specs" / "broken" / "tutorial_in_features.yaml"
UNET = ROOT / "specs" / "zoo" / "unet.yaml"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


def boxes(dot: str) -> dict[str, str]:
    """node id -> its attributes, for the boxes of layers."""
    found = re.findall(r'^\t+("(?:[^"\\]|\\.)*"|[^\s\[]+) \[(.*)\]$', dot, re.M)
    return {k.strip('"'): v for k, v in found if not k.startswith(('"@', "graph", "node"))}


def words(attrs: str) -> str:
    """The text of a label."""
    label = attrs.split(" tooltip=")[0].removeprefix("label=")
    return " ".join(re.sub(r"<[^>]*>", " ", label).split())


def caption(dot: str) -> str:
    return words(re.search(r"^\tgraph \[label=(.*)\]$", dot, re.M)[1])


def test_the_red_box_and_the_title_count_the_layer_as_written():
    dot = to_dot(MISTAKE)
    (red,) = [words(v) for v in boxes(dot).values() if f'color="{ERROR_LINE}"' in v]
    written = 1000 * 64 + 64  # Linear(1000, 64) as written: weight and bias
    corrected = 1024 * 64 + 64  # what check goes on with
    assert f"{human(written)} params" in red and human(corrected) not in red, red
    assert "in 1000, out 64" in red  # its arguments as written too
    result = netspec.check(MISTAKE)
    assert result.total_params == 145_578  # the corrected network, as check counts it
    total = result.total_params - corrected + written
    assert f"{total:,} parameters as written" in caption(dot), caption(dot)
    assert f"{result.total_params:,}" not in caption(dot)


def test_the_legend_names_only_colours_the_picture_has():
    # one error at the last-but-one layer: a red box, no grey one after it
    dot = to_dot(MISTAKE)
    assert "dashed" not in "".join(boxes(dot).values())
    assert "1 error (red boxes)" in caption(dot) and "grey" not in caption(dot)
    # a kernel too large loses the shape: the layers after it are grey, and the legend says so
    dot = to_dot(ROOT / "specs" / "broken" / "kernel_too_large.yaml")
    assert "dashed" in "".join(boxes(dot).values())
    assert "1 error (red boxes; grey: shape unknown after an error)" in caption(dot)


def test_unnamed_boxes_are_called_what_the_errors_call_them():
    (error,) = netspec.check(MISTAKE).errors
    assert "layer 7 (Linear)" in error.message
    shown = {k: words(v) for k, v in boxes(to_dot(MISTAKE)).items()}
    assert shown["7"].startswith("Linear layer 7 "), shown["7"]
    assert shown["0"].startswith("Conv2d layer 0 "), shown["0"]


def positions(dot: str) -> dict[str, tuple[float, float]]:
    """Each node's centre as dot lays it out (y grows upwards)."""
    plain = subprocess.run(["dot", "-Tplain"], input=dot, capture_output=True, text=True,
                           check=True, timeout=120).stdout
    out = {}
    for line in plain.splitlines():
        if line.startswith("node "):
            name, x, y = re.match(r'node ("[^"]*"|\S+) (\S+) (\S+)', line).groups()
            out[name.strip('"')] = (float(x), float(y))
    return out


@needs_dot
@pytest.mark.parametrize("depth", [1, None])
def test_unet_is_drawn_as_a_u(depth):
    at = positions(to_dot(UNET, depth=depth))

    def box(name: str) -> tuple[float, float]:  # a block drawn open: its boxes' centre
        found = [xy for k, xy in at.items() if k == name or k.startswith(name + ".")]
        return (sum(x for x, _ in found) / len(found), sum(y for _, y in found) / len(found))

    encoder = [box(n) for k in range(1, 5) for n in (f"enc{k}", f"pool{k}")]
    decoder = [box(n) for k in range(1, 5) for n in (f"up{k}", f"crop{k}", f"cat{k}",
                                                     f"dec{k}")]
    # the expanding path right of the contracting one, the bottleneck below both
    assert min(x for x, _ in decoder) > max(x for x, _ in encoder)
    assert box("bottom")[1] < min(y for _, y in encoder + decoder)
    for k in range(1, 5):  # each skip across: the encoder level beside its crop
        src = at[f"enc{k}"] if depth == 1 else at[f"enc{k}.relu2"]
        assert src[1] == pytest.approx(at[f"crop{k}"][1]), k
        assert at[f"crop{k}"][0] > src[0]
    # the contracting path goes down and the expanding path up
    assert [box(f"enc{k}")[1] for k in range(1, 5)] == sorted(
        (box(f"enc{k}")[1] for k in range(1, 5)), reverse=True)
    assert [box(f"dec{k}")[1] for k in range(1, 5)] == sorted(
        (box(f"dec{k}")[1] for k in range(1, 5)), reverse=True)
    assert at["@output"][1] > box("dec1")[1]
