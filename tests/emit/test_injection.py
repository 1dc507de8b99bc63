"""Spec text is data, never markup or terminal control: hostile names, types, block names and
argument values reach the DOT only quoted (ids of netspec's own making), the SVG and the HTML
report carry no link, script or event attribute the spec chose, dot neither crashes nor
fails on them, and every message shows them escaped on one line.  Also: dot's failures and
diagrams too large for it are one line and exit 2, and render stays linear in warnings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from netspec import cli
from netspec.core.diagnostics import Diagnostic, visible
from netspec.emit import render
from netspec.emit.report import html_report
from netspec.pipeline.check import check, load

ROOT = Path(__file__).resolve().parents[2]
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed (apt-get install graphviz)")

HOSTILE = {
    "dot_url_javascript": '<a> [URL="javascript:alert(document.domain)"]; <b>',
    "dot_url_https": '<a> [URL="https://example.com/", target="_blank"]; <b>',
    "title_script": "</title><script>alert(1)</script>",
    "svg_onload": '<svg onload="alert(1)"><a href="https://example.com">x</a></svg>',
    "quotes": 'a"b\'c" onmouseover="alert(1)',
    "backslashes": "a\\b\\N\\G\\l\\",
    "braces": "a{b}c]; d [URL=x] e {",
    "angles_pipe": "<x>|<y>",
    "newline": "conv\nFILE.yaml:1:1: error: forged",
    "controls": "a\x1b]0;title\x07b\x1b[2J\x00c\x7f\x9b",
    "rtl": "abc\u202edcba\u2066x\u200f",
    "port": "a:b:c",
    "keyword": "subgraph",
    "entities": "&lt;script&gt;&#106;avascript:&amp;",
    "long": "x" * 20_000,
}

PLACEMENTS = {
    "layer_name": "layers:\n  - Conv2d: {{out_channels: 4, kernel_size: 3}}\n    name: {h}\n"
                  "  - ReLU\n",
    "layer_type": "layers:\n  - {h}\n  - ReLU\n",
    "argument": "layers:\n  - Conv2d: {{out_channels: 4, kernel_size: 3, padding: {h}}}\n",
    "network_name": "layers:\n  - ReLU\n",
    "block_name": "blocks:\n  {h}:\n    layers:\n      - Conv2d: {{out_channels: 4, "
                  "kernel_size: 3, padding: 1}}\nlayers:\n  - {h}: {{}}\n    repeat: 2\n",
    "group_name": "layers:\n  - name: {h}\n    layers:\n      - ReLU\n      - Flatten\n",
    "from_name": "layers:\n  - ReLU\n    name: r\n  - Add\n    from: [r, {h}]\n",
    "repeat_name": "layers:\n  - ReLU\n    repeat: {{count: 2, name: {h}}}\n",
}
SHOWN_IN_TITLE = ("layer_name", "layer_type", "group_name")  # a bad network name: no drawing


def hostile_spec(placement: str, text: str) -> str:
    quoted = json.dumps(text)  # a JSON string is a YAML double-quoted scalar
    name = quoted if placement == "network_name" else "Net"
    return (f"netspec: 1\nname: {name}\ninput: [3, 8, 8]\n"
            + PLACEMENTS[placement].format(h=quoted))


CASES = [(p, h) for p in PLACEMENTS for h in HOSTILE]

# an id netspec made: ASCII letters, digits, '_', '.', its own '@' and '#' (quoted or not)
SAFE_ID = re.compile(r'"?[@A-Za-z0-9_.#]+"?')
STATEMENT = re.compile(r"^\t+(?!graph |node |edge |subgraph |\}|\{)(\S+)(?: -> (\S+))? \[", re.M)


def assert_dot_ids_are_netspecs(dot: str) -> None:
    for m in STATEMENT.finditer(dot):
        for ident in m.groups():
            if ident is not None:
                assert SAFE_ID.fullmatch(ident), f"spec text as a DOT id: {ident[:80]!r}"
    for name in re.findall(r"^\s*subgraph (\S+) \{", dot, re.M):
        assert SAFE_ID.fullmatch(name), name
    digraph = re.match(r"digraph (\S+) \{", dot)
    assert digraph and SAFE_ID.fullmatch(digraph[1])


def assert_svg_inert(svg: str) -> str:
    """No link, script or event attribute in the SVG; node titles are netspec's ids.
    Returns the SVG's text, whitespace-normalised."""
    root = ET.fromstring(svg)
    texts = []
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        assert tag not in ("script", "foreignObject", "iframe", "image", "use"), tag
        for attr in el.attrib:
            local = attr.rsplit("}", 1)[-1].lower()
            assert local != "href" and not local.startswith("on"), (attr, el.attrib[attr])
        if el.text:
            texts.append(el.text)
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "node":
            title = g.find("{http://www.w3.org/2000/svg}title")
            assert title is not None and SAFE_ID.fullmatch(title.text or ""), title.text
    return " ".join(" ".join(texts).split())


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_html_inert(page: str) -> None:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag not in ("script", "iframe", "object", "embed", "base", "link"), tag
        if tag == "meta":  # charset and viewport only: no http-equiv refresh to a URL
            assert {n for n, _ in attrs} <= {"charset", "name", "content"}, attrs
        for name, value in attrs:
            assert name not in ("href", "xlink:href", "src", "action", "formaction"), (
                tag, name, value)
            assert not name.startswith("on"), (tag, name, value)


# ------------------------------------------------------------------ DOT, SVG and HTML


def test_dot_injection_url_reproducer():
    """Issue 10 §4: a name '<a> [URL="javascript:..."]; <b>' made the SVG carry
    <a xlink:href="javascript:...">; it must reach the DOT only as text."""
    spec = hostile_spec("layer_name", HOSTILE["dot_url_javascript"])
    dot = render.to_dot(spec)
    assert_dot_ids_are_netspecs(dot)
    assert 'URL="' not in dot  # in labels and tooltips only as text: URL=&quot;...
    if shutil.which("dot"):
        svg = render.layout(render.graph(spec), "svg").decode()
        assert "href" not in svg
        assert 'URL="javascript:alert(document.domain)"' in assert_svg_inert(svg)


@pytest.mark.parametrize(("placement", "hostile"), CASES, ids=[f"{p}-{h}" for p, h in CASES])
def test_hostile_text_reaches_dot_quoted(placement, hostile):
    dot = render.to_dot(hostile_spec(placement, HOSTILE[hostile]))
    assert_dot_ids_are_netspecs(dot)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", dot)  # dot's parser stops on these
    assert len(dot) < 200_000  # a 20,000-character name is clipped, not drawn in full


@needs_dot
@pytest.mark.parametrize(("placement", "hostile"), CASES, ids=[f"{p}-{h}" for p, h in CASES])
def test_hostile_text_svg_and_report_are_inert(placement, hostile):
    """Issue 10 §1: render and report crashed (CalledProcessError from dot) on control
    characters and '</title><script>'; §4: no link, script or event attribute."""
    spec = hostile_spec(placement, HOSTILE[hostile])
    svg = render.layout(render.graph(spec), "svg").decode()  # dot succeeds
    text = assert_svg_inert(svg)
    if placement in SHOWN_IN_TITLE:  # the text is shown (escaped, clipped), not dropped
        shown = " ".join(visible(HOSTILE[hostile]).split())[:20]
        assert shown in text
    page, _, no_diagram = html_report(spec)
    assert no_diagram is None and "<svg" in page
    assert_html_inert(page)


def test_dot_identifiers_never_come_from_the_spec():
    spec = hostile_spec("layer_name", "a:b")  # 'a:b' as an id is node a, port b
    dot = render.to_dot(spec)
    assert "a_b" in dot and '"a:b"' not in dot
    assert_dot_ids_are_netspecs(dot)


# ------------------------------------------------------------------ the terminal

TERMINAL_SPECS = {
    "controls": "netspec: 1\nname: \"T\\e]0;pwned\\aX\"\ninput: [3, 8, 8]\nlayers:\n"
                "  - \"Conv2d\\nFORGED.yaml:1:1: error: forged\"\n  - \"Re\\e[2JLU\"\n"
                "  - Conv2d: {out_channels: 4, kernel_size: 3}\n    name: \"c\\x07\\u202e\"\n",
    "arguments": "netspec: 1\nname: Net\ninput: [3, 8, 8]\nlayers:\n"
                 "  - Conv2d: {out_channels: 4, kernel_size: \"3\\e[31m\", padd\\x1bing: 1}\n"
                 "  - \"\\u202eReLU\": {inplace: \"\\r\\t\"}\n",
    "blocks": "netspec: 1\nname: Net\ninput: [3, 8, 8]\nblocks:\n  \"B\\e[1m\":\n"
              "    layers:\n      - Conv2d: {out_channels: \"c\\x85\", kernel_size: 3}\n"
              "layers:\n  - \"B\\e[1m\": {}\n  - Linear: {out_features: 4}\n    from: [\"x\\n\"]\n",
}
# stdout and stderr: lines of printable text; tabs and newlines only as line structure
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                         "\u2066-\u2069]")


@pytest.mark.parametrize("spec_kind", TERMINAL_SPECS)
def test_messages_escape_spec_text_on_every_command(spec_kind, tmp_path):
    """Issue 10 §4: diagnostics echoed raw ESC/BEL (a title change, a screen clear) and a
    '\\n' in a layer type forged a 'FILE:1:1: error:' line."""
    spec = tmp_path / "hostile.yaml"
    spec.write_text(TERMINAL_SPECS[spec_kind], encoding="utf-8")
    commands = [["check"], ["check", "--json"], ["summary"], ["codegen"], ["build"],
                ["render", "-o", str(tmp_path / "net.dot")],
                ["report", "-o", str(tmp_path / "r.html")]]
    for command in commands:
        run = subprocess.run([sys.executable, "-m", "netspec", command[0], str(spec),
                              *command[1:]], capture_output=True, cwd=ROOT, timeout=120)
        assert run.returncode == 1, (command, run.stderr[-2000:])
        out, err = run.stdout.decode("utf-8"), run.stderr.decode("utf-8")
        assert "Traceback" not in err
        for stream in (out, err):
            assert not UNPRINTABLE.search(stream), (command, stream[:2000])
        if command == ["check", "--json"]:
            (result,) = [json.loads(line) for line in out.splitlines()]
            assert not result["ok"] and result["errors"]
            continue
        assert any(": error: " in line for line in err.splitlines()), command
        for line in err.splitlines():
            assert line.startswith((f"{spec}:", "netspec:", "wrote ")), (command, line)


def test_diagnostic_shows_spec_text_on_one_line():
    d = Diagnostic("f.yaml", 3, 5, "unknown layer 'Re\x1b[2JLU\nf.yaml:1:1: error: x\u202e\x07'")
    line = d.format()
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line
    assert "\u202e" not in line
    assert line == ("f.yaml:3:5: error: unknown layer "
                    "'Re\\x1b[2JLU\\nf.yaml:1:1: error: x\\u202e\\x07'")
    assert d.message in line and json.loads(json.dumps(d.as_json()))["message"] == d.message


def test_newline_in_a_layer_type_forges_no_line():
    result = check(load(TERMINAL_SPECS["controls"]))
    lines = [line for d in result.diagnostics for line in d.format().splitlines()]
    assert len(lines) == len(result.diagnostics)
    assert not any(line.startswith("FORGED.yaml") for line in lines)


# ------------------------------------------------------------------ dot's failures, size


def _fake_dot(tmp_path: Path, body: str) -> dict[str, str]:
    """An environment whose only 'dot' is a script doing ``body``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dot = bin_dir / "dot"
    dot.write_text(f"#!/bin/sh\n{body}\n")
    dot.chmod(0o755)
    return {**os.environ, "PATH": str(bin_dir)}


def _netspec(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


def test_dot_crash_is_one_line_and_exit_2(tmp_path):
    """Issue 10 §1: dot segfaults on ~100,000-node graphs and netspec printed a traceback."""
    env = _fake_dot(tmp_path, "cat >/dev/null; kill -SEGV $$")
    out = tmp_path / "net.svg"
    run = _netspec("render", str(ROOT / "specs/zoo/lenet5.yaml"), "-o", str(out), env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = [x for x in run.stderr.splitlines() if x.startswith("netspec:")]
    assert "Graphviz's dot failed (killed by SIGSEGV)" in line
    assert not out.exists() and (tmp_path / "net.dot").read_text().startswith("digraph")
    page = tmp_path / "r.html"
    run = _netspec("report", str(ROOT / "specs/zoo/lenet5.yaml"), "-o", str(page), env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "the report has no diagram: Graphviz's dot failed (killed by SIGSEGV)" in run.stderr
    assert "No diagram: Graphviz&#x27;s dot failed" in page.read_text()


def test_dot_error_exit_is_one_line_with_dots_message(tmp_path):
    env = _fake_dot(tmp_path, "cat >/dev/null; echo 'Warning: x' >&2; "
                    "printf 'Error: <stdin>: syntax error in line 7\\033]0;t\\007\\n' >&2; exit 1")
    run = _netspec("render", str(ROOT / "specs/zoo/lenet5.yaml"), "-o",
                   str(tmp_path / "n.png"), env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert ("netspec: Graphviz's dot failed (exit status 1): Error: <stdin>: syntax error in "
            "line 7\\x1b]0;t\\x07 (the DOT text is in") in run.stderr
    assert "\x1b" not in run.stderr


def _flat_spec(n: int) -> str:
    cycle = ["  - Conv1d: {out_channels: 8, kernel_size: 3, padding: 1}", "  - ReLU"]
    return "\n".join(["netspec: 1", "name: Flat", "input: [8, 16]", "layers:",
                      *(cycle[i % 2] for i in range(n))]) + "\n"


def test_diagram_too_large_for_dot_is_refused_before_running_it(tmp_path):
    """More boxes at --depth 1 than dot lays out in reasonable time: one line, exit 2, and
    dot never started (it takes minutes near 10,000 boxes and crashes near 100,000)."""
    env = _fake_dot(tmp_path, f"touch {tmp_path / 'dot_ran'}; cat >/dev/null; exit 1")
    spec = tmp_path / "flat.yaml"
    spec.write_text(_flat_spec(render.MAX_LAYOUT_BOXES + 10))
    run = _netspec("render", str(spec), "-o", str(tmp_path / "n.svg"), env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "boxes even at --depth 1" in run.stderr and "-o net.dot" in run.stderr
    assert not (tmp_path / "dot_ran").exists() and not (tmp_path / "n.svg").exists()
    # the DOT text itself has no limit
    run = _netspec("render", str(spec), "-o", str(tmp_path / "n.dot"), env=env)
    assert run.returncode == 0 and (tmp_path / "n.dot").read_text().startswith("digraph")
    run = _netspec("report", str(spec), "-o", str(tmp_path / "r.html"), env=env)
    assert run.returncode == 2 and "the report has no diagram:" in run.stderr
    assert not (tmp_path / "dot_ran").exists()


@needs_dot
def test_large_diagram_drawn_less_deep_with_a_note(tmp_path, monkeypatch, capsys):
    spec = ROOT / "specs/zoo/resnet18.yaml"
    result = check(load(spec))
    full = sum(1 for top in result.layers for _ in top.walk()) + 2
    top = len(result.layers) + 2
    monkeypatch.setattr(render, "MAX_LAYOUT_BOXES", top + 5)
    assert top + 5 < full
    depth, note = render.layout_depth(result, None)
    assert depth is not None and depth >= 1 and f"{full:,} boxes" in note
    out = tmp_path / "n.svg"
    assert cli.main(["render", str(spec), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"netspec: note: drawn {depth} level" in err and "--depth" in err
    assert "drawn 1 level deep" in out.read_text()  # the note is in the caption too
    monkeypatch.setattr(render, "MAX_LAYOUT_BOXES", top - 1)
    with pytest.raises(render.DiagramTooLarge):
        render.layout_depth(result, None)


def test_a_full_diagram_too_large_for_dot_is_refused_by_layout_too(tmp_path):
    """graph() draws what it is asked; layout() of 10,000 boxes ran dot for minutes (the
    fuzzer's seed 10, mutant #668: a 10,000-copy repeat). It is refused at once, and
    render() of the same spec draws it at depth 1."""
    spec = ("netspec: 1\ninput: [8]\nlayers:\n  - Linear: [8, 8]\n    repeat: 10000\n"
            "  - Linear: [8, 2]\n")
    result = check(spec)
    assert result.ok
    with pytest.raises(render.DiagramTooLarge, match=r"10,00\d boxes"):
        render.layout(render.graph(result), "svg")
    if shutil.which("dot"):
        out, note = render.render_checked(result, None, tmp_path / "n.svg")
        assert note.startswith("drawn 1 level deep") and b"<svg" in out.read_bytes()


# ------------------------------------------------------------------ render speed


def _lstm_spec(copies: int) -> str:
    """One LSTM repeated: every copy warns (batch_first is false), all at one position."""
    return (f"netspec: 1\nname: L\ninput: [10, 16]\nlayers:\n"
            f"  - LSTM: {{hidden_size: 16}}\n    repeat: {copies}\n")


def _render_lines(spec_text: str) -> int:
    """Lines of netspec/render.py executed to draw a spec (checked beforehand): a count of
    Python-level work that does not depend on the machine's speed or load."""
    result, doc = render._checked(load(spec_text))
    target = render.__file__
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename == target else None

    sys.settrace(tracer)
    try:
        render._graph(result, doc, None, "TB", False).source  # noqa: B018
    finally:
        sys.settrace(None)
    return count


def test_render_is_linear_in_warnings():
    """Issue 10 §5: rendering was cubic in the warnings (2,000 warned LSTM copies: 27 s to
    .dot, 0.16 s to check).  Four times the copies must cost about four times the work."""
    small, large = _render_lines(_lstm_spec(100)), _render_lines(_lstm_spec(400))
    assert render.check(load(_lstm_spec(400))).warnings  # the copies do warn
    assert large < 5 * small, (small, large)
