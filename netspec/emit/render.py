"""netspec render: a checked spec as a Graphviz diagram (DOT, then SVG, PNG or PDF).

Every layer is a box (type, key arguments, output shape, parameters) coloured by its
family; every edge carries the shape of the tensor on it; groups, blocks and repeats are
clusters, or one box each below ``depth``; merges are where branches meet.  It works from
``netspec.check``'s result, so it never imports torch and it draws a spec with errors too:
the broken layers red with the error text, the layers after them (shapes unknown) grey.

The DOT text is a pure function of the spec and the options, so the same spec always
renders to the same DOT.  Laying it out needs Graphviz's ``dot`` program.
"""

from __future__ import annotations

import functools
import html
import itertools
import math
import os
import re
import shutil
import signal
import subprocess
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz

from netspec.core.diagnostics import Diagnostic, SpecError, visible
from netspec.core.graph import Node
from netspec.core.names import split_source
from netspec.ops import REGISTRY, fmt
from netspec.ops.declare import Args, Draw
from netspec.ops.text import size
from netspec.pipeline.check import CheckResult, Spec, check, load
from netspec.pipeline.resolve import keyword_form

FORMATS = ("svg", "png", "pdf", "dot")
FONT = "Helvetica,Arial,sans-serif"  # Helvetica's metrics: Liberation Sans / Arial everywhere

INSTALL_HINT = (
    "install Graphviz: apt-get install graphviz (Debian/Ubuntu), brew install graphviz "
    "(macOS), or conda install -c conda-forge graphviz"
)

# fill, border: one colour per layer family, the same in every diagram
FAMILY_COLOURS: dict[str, tuple[str, str]] = {
    "conv": ("#dbe8fb", "#3d6fb6"),
    "linear": ("#e7defa", "#7450c0"),
    "norm": ("#fdf1c4", "#b8940a"),
    "activation": ("#dbf2dc", "#3f8f45"),
    "pool": ("#d3f0f2", "#25878f"),
    "dropout": ("#ececec", "#8a8a8a"),
    "merge": ("#ffe3c7", "#cf7422"),
    "shape": ("#f1efe9", "#8c8468"),
    "padding": ("#f6e3f1", "#a54d8d"),
    "recurrent": ("#ffdede", "#b85c5c"),
    "embedding": ("#fde5d0", "#b2642b"),
    "block": ("#e4e7f0", "#56617d"),  # a collapsed group, block or repeat
    "unknown": ("#f4f4f4", "#9a9a9a"),  # a type netspec does not know (a typo)
}
FAMILY_NAMES = {
    "conv": "convolution", "linear": "linear", "norm": "normalization",
    "activation": "activation", "pool": "pooling", "dropout": "dropout",
    "merge": "merge (Add, Mul, Concat, CropTo)", "shape": "reshape / resample",
    "padding": "padding", "recurrent": "recurrent / transformer", "embedding": "embedding",
    "block": "collapsed group, block or repeat",
}
ERROR_FILL, ERROR_LINE, ERROR_TEXT = "#ffe0e0", "#d62828", "#b00000"
WARNING_LINE, WARNING_TEXT = "#e09b00", "#8a5a00"
UNKNOWN_TEXT = "#8a8a8a"
CLUSTER_FILL = {"group": "#f6f7f9", "block": "#f3f5fb", "repeat": "#fafafa",
                "branches": "#f7f6fb"}
CONTAINERS = ("group", "block", "repeat", "branches")
CLUSTER_LINE = "#8e97ad"


# dot lays out a 1,000-box chain in about 3 s and 3,000 in about 20 s (it grows about as the
# square), and crashes near 100,000: larger diagrams are drawn less deep (see layout_depth)
MAX_LAYOUT_BOXES = 2_000
_MAX_TITLES = 500  # cluster titles and notes drawn as boxes beside the layers themselves


class DotFailed(RuntimeError):
    """Graphviz's ``dot`` ran but failed (an error exit or a crash); one line saying how."""


class DiagramTooLarge(RuntimeError):
    """Even the top level alone has more boxes than ``dot`` lays out in reasonable time."""


class DotNotFound(RuntimeError):
    """Graphviz's ``dot`` program is missing; ``dot_file`` holds the DOT text written instead."""

    def __init__(self, dot_file: Path):
        self.dot_file = dot_file
        super().__init__(
            f"cannot lay out the diagram: Graphviz's 'dot' program is not installed "
            f"(the DOT text is in {dot_file}); {INSTALL_HINT}; then run again, or "
            f"'dot -Tsvg {dot_file} -o diagram.svg'"
        )


# ------------------------------------------------------------------ text helpers


def human(n: int) -> str:
    """Parameters, short: 650, 9,408, 36.9K, 11.7M."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}K"
    if n < 1_000_000_000:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e9:.2f}B"


LABEL_WIDTH = 48  # a name or type longer than this is clipped in its box
TOOLTIP_WIDTH = 400


def _escaped(text: Any, width: int | None) -> str:
    shown = visible(str(text))  # XML cannot carry control characters, and dot fails on them
    return html.escape(_clip(shown, width) if width else shown, quote=True)


def _e(text: Any, width: int | None = None) -> str:
    """Text for an HTML-like label: controls made visible, escaped for HTML (spec text can
    add no markup or attribute), backslashes doubled (dot expands '\\N', '\\G' even there)."""
    return _escaped(text, width).replace("\\", "\\\\")


def _tip(text: str) -> str:
    """Text for a tooltip (a quoted DOT escString): escaped for HTML as a label is, clipped,
    and its backslashes doubled (graphviz.escape) so that no '\\N' or '\\l' takes effect."""
    return graphviz.escape(_escaped(text, TOOLTIP_WIDTH))


def _wrap(text: str, width: int = 46, lines: int = 6) -> list[str]:
    return list(_wrapped(text[: width * (lines + 1)], width, lines))  # the rest is cut anyway


@functools.lru_cache(maxsize=1024)  # the same warning on 10,000 copies is wrapped once
def _wrapped(text: str, width: int, lines: int) -> tuple[str, ...]:
    out = textwrap.wrap(visible(text), width, break_long_words=True, break_on_hyphens=False)
    if len(out) > lines:
        out = [*out[: lines - 1], out[lines - 1][: width - 1] + "…"]
    return tuple(out or [""])


_LABEL = re.compile(r"^(?:layer [\w.]+|[\w.]+)(?: '[^']*')?(?: \([^()]*\))?: ")


def short_message(message: str) -> str:
    """The message without its 'layer 7 (Linear): ' prefix: the box already says which."""
    return _LABEL.sub("", message, count=1)


def key_args(type_name: str, kw: dict[str, Any]) -> str:
    """The arguments a reader needs to tell two layers of a type apart, in a few words."""
    lt = REGISTRY.get(type_name)
    if lt is None:
        return ""
    if lt.draw.key_args is not None:
        return lt.draw.key_args(kw)
    parts: list[str] = []
    # the rest: written arguments that differ from the default, inplace left out
    for arg in lt.args:
        if arg.infer is not None or arg.name not in kw or arg.name == "inplace":
            continue
        value = kw[arg.name]
        if value == arg.default:
            continue
        parts.append(f"{arg.name} {size(value)}")
    return _clip(", ".join(parts), 40)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def family(type_name: str) -> str:
    lt = REGISTRY.get(type_name)
    return lt.family if lt is not None else "unknown"


def _draw(type_name: str) -> Draw:
    lt = REGISTRY.get(type_name)
    return lt.draw if lt is not None else Draw()


def _takes_none(type_name: str) -> bool:
    lt = REGISTRY.get(type_name)
    return lt is not None and lt.takes_none


def _symbol(r: Node) -> str | None:
    """The op's symbol, with the number it takes in place of a tensor (× 0.125); None where
    it has none or a written keyword (rounding_mode) needs a box to show."""
    lt = REGISTRY.get(r.type)
    if lt is None or lt.draw.symbol is None:
        return None
    values = {**{a.name: a.default for a in lt.args}, **r.kwargs}
    if lt.keyword_values(values):
        return None
    scalar = lt.scalar_given(r.kwargs)
    return lt.draw.symbol + (f" {r.kwargs[scalar]!r}" if scalar else "")


def _fuse(type_name: str) -> str | None:
    """"weighted" (a fused box's main layer), "follower" (fuses after one) or None."""
    lt = REGISTRY.get(type_name)
    return lt.fuse if lt is not None else None


# ------------------------------------------------------------------ where errors are


@dataclass
class Problems:
    """Diagnostics attached to the results they are about, and the ones about no layer."""

    errors: dict[int, list[str]] = field(default_factory=dict)  # id(result) -> messages
    warnings: dict[int, list[str]] = field(default_factory=dict)
    unplaced: list[Diagnostic] = field(default_factory=list)


class _Places:
    """The nodes a diagnostic can be about: by the path of its position in the YAML, the
    (index, name) of the layer it names, or the top-level layer."""

    def __init__(self, result: CheckResult, doc=None):
        by_path: dict[tuple, list[Node]] = {}
        depth: dict[int, int] = {}  # id(result) -> how deeply it is nested
        for top in result.layers:
            for level, r in top.walk():
                by_path.setdefault(r.path, []).append(r)
                depth[id(r)] = level
        self.by_path = by_path
        # the most deeply nested results at each path (a repeat's copies, not the repeat),
        # and those again by the (index, name) a diagnostic's layer gives
        self.deepest: dict[tuple, list[Node]] = {}
        self.by_layer: dict[tuple, list[Node]] = {}
        for path, found in by_path.items():
            level = max(depth[id(r)] for r in found)
            self.deepest[path] = [r for r in found if depth[id(r)] == level]
            for r in self.deepest[path]:
                self.by_layer.setdefault((path, r.index, r.name), []).append(r)
        self.top_level: dict[tuple, list[Node]] = {}
        for r in result.layers:
            self.top_level.setdefault((r.index, r.name), []).append(r)
        self.at: dict[tuple[int, int], list[tuple]] = {}
        if doc is not None:
            for table in (doc.positions, doc.keys):
                for path, pos in table.items():
                    self.at.setdefault(pos, []).append(path)
        self.chosen: dict[tuple, list[Node]] = {}  # memo of _failed_first per candidate list

    def targets(self, d: Diagnostic) -> list[Node]:
        where: tuple | None = None
        best = -1
        for path in self.at.get((d.line, d.col), []):
            for n in range(len(path), 0, -1):
                if path[:n] in self.by_path and n > best:
                    best, where = n, path[:n]
                    break
        index, name = _layer_key(d)
        targets: list[Node] = []
        if where is not None:
            key = (where, index, name)
            if key not in self.by_layer:
                key = (where,)
            if key not in self.chosen:
                self.chosen[key] = _failed_first(
                    self.by_layer[key] if len(key) > 1 else self.deepest[where])
            targets = self.chosen[key]
        if not targets and index is not None:
            targets = self.top_level.get((index, name), [])
        return targets


def attach(result: CheckResult, doc=None) -> Problems:
    """Find the layer each error and warning is about: by its position in the YAML when the
    document is at hand (a mistake in a block's body marks every copy that went wrong; a
    repeat's copies, which share a position, by the copy the diagnostic names), else by the
    layer it names.  Linear in layers plus diagnostics: a 10,000-copy repeat with a warning
    per copy must not cost 10,000 x 10,000."""
    problems = Problems()
    places = _Places(result, doc)
    seen: set[tuple[int, str]] = set()  # (id(result), text) already attached
    for d in result.diagnostics:
        if d.severity not in ("error", "warning"):
            continue  # notes: 'layers 5-6 not shape-checked' is what grey boxes say
        targets = places.targets(d)
        if not targets:
            problems.unplaced.append(d)
            continue
        into = problems.errors if d.severity == "error" else problems.warnings
        text = short_message(d.message)
        for t in targets:
            if (id(t), text) not in seen:
                seen.add((id(t), text))
                into.setdefault(id(t), []).append(text)
    return problems


def _layer_key(d: Diagnostic) -> tuple[Any, Any]:
    """(index, name) of the layer a diagnostic names, (None, None) if it names none usable."""
    layer = d.layer or {}
    index, name = layer.get("index"), layer.get("name")
    if isinstance(index, int) and isinstance(name, str):
        return index, name
    return None, None


def kwargs_as_written(r: Node) -> dict[str, Any]:
    """A layer's arguments as the spec writes them.  Where a written inferable argument
    disagrees with its input (in_features 1000 written, 1024 coming in), check reports it
    and goes on with the input's value, so ``r.kwargs`` and ``r.params`` describe that
    corrected layer; a box with the error shows the layer as written (what PyTorch would
    build from the spec)."""
    lt = REGISTRY.get(r.type)
    if r.kind != "layer" or lt is None or not isinstance(r.written, dict):
        return r.kwargs
    try:
        written = keyword_form(lt, r.written.get(r.type))[1]
    except Exception:  # pragma: no cover - check read it; a form it refused has errors
        return r.kwargs
    changed = {a.name: written[a.name] for a in lt.args if a.infer is not None
               and a.name in written and _plain(written[a.name])
               and written[a.name] != r.kwargs.get(a.name)}
    return {**r.kwargs, **changed}


def params_as_written(r: Node) -> int | None:
    """A layer's parameters with its arguments as written (see kwargs_as_written)."""
    kwargs = kwargs_as_written(r)
    if kwargs is r.kwargs or r.params is None or r.input_shape is None:
        return r.params
    lt = REGISTRY[r.type]
    try:
        return lt.params(Args.filled(lt, kwargs), r.input_shape)
    except Exception:  # a written value the rule cannot count: the checked count
        return r.params


def _plain(value: Any) -> bool:
    """A literal the spec wrote (not a block parameter's expression)."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def total_as_written(result: CheckResult) -> int:
    """The network's parameters with every layer as written (see params_as_written)."""
    delta = sum((params_as_written(r) or 0) - (r.params or 0) for top in result.layers
                for _, r in top.walk() if r.kind == "layer")
    return result.total_params + delta


def _failed_first(targets: list[Node]) -> list[Node]:
    """Of several copies a diagnostic's position fits, those whose shape was lost, if any."""
    if len(targets) <= 1:
        return targets
    return [t for t in targets if t.output_shape is None] or targets


# ------------------------------------------------------------------ the drawing


@dataclass
class Port:
    """A tensor in the diagram: the node that makes it and its shape (None: unknown)."""

    node: str
    shape: tuple[int, ...] | None
    chain: bool = False  # taken by the next entry without from:, the main path
    part: str | None = None  # one output of an op giving several (halves.0): its name
    parts: tuple = ()  # an op giving several tensors: (name, shape) of each
    # a group's or block's outputs, or branches side by side: drawn expanded, each from
    # the box inside that makes it
    part_ports: dict | None = None


class _Drawing:
    def __init__(self, result: CheckResult, problems: Problems, depth: int | None,
                 rankdir: str, compact: bool, title: str, doc=None):
        self.result = result
        self.problems = problems
        self.depth = depth
        self.compact = compact
        self.rankdir = rankdir
        self.doc = doc
        self.ids: set[str] = set()
        self.nodes: list[str] = []  # boxes in the order drawn
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.top_env: dict[str, Port] = {}  # the top-level names, once drawn
        self.last_env: dict[str, Port] = {}  # the names of the list drawn last
        self.drawn_red = self.drawn_grey = False  # what the caption's legend describes
        self.order: list[str] = []  # every id made, boxes and cluster titles, in order
        self.top_ids: dict[int, list[str]] = {}  # a top-level entry's index -> its ids
        g = graphviz.Digraph(name=_dot_id(title) or "net", format="svg")
        g.attr("graph", rankdir=rankdir, fontname=FONT, fontsize="13", labelloc="t",
               labeljust="c", nodesep="0.25", ranksep="0.3", newrank="true",
               bgcolor="white", pad="0.25", outputorder="edgesfirst")
        g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="11",
               margin="0.12,0.05", penwidth="1.2", height="0.3")
        g.attr("edge", fontname=FONT, fontsize="9", fontcolor="#3a3a3a", color="#5f6368",
               arrowsize="0.6", penwidth="1.0")
        self.g = g

    # ---------------------------------------------------------------- ids

    def node_id(self, spec_name: str, prefix: str = "") -> str:
        """A node id of netspec's making: ``prefix`` and the layer's dotted name with every
        character but ASCII letters, digits, '_' and '.' replaced, numbered if taken.  Spec
        text never reaches the DOT as an id (where '<a> [URL=...]' would be markup, and
        'a:b' a port)."""
        base = prefix + (_dot_id(spec_name) or "layer")
        name, k = base, 2
        while name in self.ids:
            name, k = f"{base}#{k}", k + 1
        self.ids.add(name)
        self.order.append(name)
        if not prefix.startswith(("@title.", "cluster.")):
            self.nodes.append(name)
        return name

    # ---------------------------------------------------------------- the network

    def draw(self) -> None:
        net = self.result.network
        ports = {}
        for spec_input in net.all_inputs:  # one box per input: 'input', or each named one
            name = spec_input.name if net.inputs else "input"
            dtype = f" {spec_input.dtype}" if spec_input.dtype != "float32" else ""
            node = self.node_id(name, "@input." if net.inputs else "@")
            self.g.node(node, label=_html(_rows([f"<B>{_e(name, LABEL_WIDTH)}</B>", _small(
                _e(f"{fmt(spec_input.shape)}{dtype}"))])), shape="box", style="rounded,filled",
                fillcolor="#ffffff", color="#444444")
            ports[name] = Port(node, spec_input.shape)
        first = next(iter(ports.values()))
        out = self.scope(self.g, self.result.layers, 0, first,
                         named=ports if net.inputs else None)
        if not net.outputs:
            self.output_box("output", "@", out)
            self.edge(out, "@output")
        for output in net.outputs:  # one box per output, named by its key
            port = self.source(self.top_env, output.source, out)
            node = self.output_box(output.key, "@output.", port, output.training_only)
            self.edge(port, node, training_only=output.training_only)
        upward = self.u_layout()
        fanout: dict[str, int] = {}
        for a, _, attrs in self.edges:
            if attrs.get("style") != "invis":
                fanout[a] = fanout.get(a, 0) + 1
        for a, b, attrs in self.edges:
            if "weight" in attrs and fanout.get(a, 0) > 2:
                # where a tensor fans out to several branches (Inception), none is the
                # main path: straightening one would push every module sideways
                attrs = {k: v for k, v in attrs.items() if k != "weight"}
            if a in upward and b in upward:  # the expanding path, drawn going up
                self.g.edge(b, a, dir="back", **attrs)
            else:
                self.g.edge(a, b, **attrs)

    def u_layout(self) -> set[str]:
        """An encoder-decoder with skips across (U-Net) drawn as the paper draws it: the
        contracting path down on the left, the expanding path up on the right, each skip's
        two ends side by side.  Returns the ids whose edges between them go up (the
        expanding path and the bottom of the U); the skips' ends are put on one rank here.
        Read off the graph, not the ops: the bottom is the top-level entry of the lowest
        resolution, the skips are from: sources that jump over it, nested inside each
        other.  Nothing (an empty set) for any other network."""
        layers = self.result.layers
        spatial = {r.index: _resolution(r.output_shape) for r in layers}
        known = {i: v for i, v in spatial.items() if v is not None}
        if not known or self.rankdir != "TB":
            return set()
        bottom = min(known, key=lambda i: (known[i], i))
        by_name = {r.name: r.index for r in layers}
        bases = {src: split_source(src, by_name)[0] for r in layers for src in r.sources}
        skips = sorted({(by_name[bases[src]], r.index) for r in layers
                        for src in r.sources if bases[src] in by_name
                        and by_name[bases[src]] < bottom < r.index})
        nested = all(a[0] < b[0] and a[1] > b[1] for a, b in itertools.pairwise(skips))
        if len(skips) < 2 or not nested or any(not self.top_ids.get(i) for s in skips
                                                for i in s):
            return set()
        for src, dst in skips:  # the end of the encoder level beside the decoder's start
            ends = [i for i in self.top_ids[src] if i in self.nodes][-1:] + \
                [i for i in self.top_ids[dst] if i in self.nodes][:1]
            with self.g.subgraph() as row:
                row.attr(rank="same")
                for node in ends:
                    row.node(node)
        upward = {"@output"} | set(self.top_ids.get(bottom, []))
        for i, ids in self.top_ids.items():
            if i > bottom:
                upward.update(ids)
        return upward

    def output_box(self, key: str, prefix: str, port: Port, training_only: bool = False
                   ) -> str:
        known = port.shape is not None
        node = self.node_id(key, prefix)
        title = f"<B>{_e(key, LABEL_WIDTH)}</B>" + (" (training only)" if training_only else "")
        self.g.node(node, label=_html(_rows([title, _small(_e(_shape(port.shape)))])),
                    shape="box", style="rounded,filled" if known else "rounded,filled,dashed",
                    fillcolor="#ffffff", color="#444444" if known else UNKNOWN_TEXT)
        return node

    @staticmethod
    def source(env: dict[str, Port], name: str, default: Port) -> Port:
        """The port a from: name gives: an entry's, or one output of an entry giving
        several (halves.0: the entry's box, the part's shape, the edge labelled 0)."""
        base, key = split_source(name, env)
        port = env.get(base, default)
        if not key:
            return port
        inner = (port.part_ports or {}).get(key)
        if inner is not None:
            return Port(inner.node, inner.shape, part=key)
        return Port(port.node, dict(port.parts).get(key), part=key)

    def edge(self, src: Port, dst: str, training_only: bool = False) -> None:
        # every edge goes into the top-level graph at the end: a node named in an edge
        # inside a cluster would be pulled into that cluster
        if src.shape is None:
            attrs = {"label": " ? ", "style": "dashed", "color": UNKNOWN_TEXT,
                     "fontcolor": UNKNOWN_TEXT}
        else:
            part = f"{src.part}: " if src.part else ""
            attrs = {"label": graphviz.escape(f" {part}{visible(fmt(src.shape))} ")}
        if training_only:
            attrs["style"] = "dashed"
        if src.chain:
            attrs["weight"] = "4"  # keep the main path straight, branches around it
        self.edges.append((src.node, dst, attrs))

    def scope(self, graph, results: list[Node], level: int, inp: Port,
              named: dict[str, Port] | None = None) -> Port:
        """Draw one list of entries (the network, a group's, a block's, a repeat's copies)
        into ``graph``; returns the port of its output.  ``named``: the network's named
        inputs."""
        env: dict[str, Port] = dict(named) if named else {"input": inp}
        previous = inp
        items = self.fuse(results) if self.compact else [[r] for r in results]
        for item in items:
            head = item[0]
            if head.sources:  # from: names; the previous entry among them is the main path
                sources = [self.source(env, s, inp) for s in head.sources]
                # (a merge of three or more, like Inception's Concat, has no main path)
                sources = [Port(p.node, p.shape,
                                chain=p.node == previous.node and len(sources) <= 2,
                                part=p.part)
                           for p in sources]
            elif _takes_none(head.type):  # a Parameter: no edge into it
                sources = []
            else:
                sources = [Port(previous.node, previous.shape, chain=True)]
            drawn = len(self.order)
            if len(item) > 1:
                port = self.fused(graph, item, sources)
            else:
                port = self.entry(graph, head, level, sources)
            if level == 0:
                for r in item:
                    self.top_ids[r.index] = self.order[drawn:]
            named = item[-1].outputs + item[-1].states  # Split's parts, an LSTM's h_n
            if named:
                port = Port(port.node, port.shape, port.chain, parts=tuple(named),
                            part_ports=port.part_ports)
            for r in item:
                env[r.name] = port
            previous = port
        if level == 0:
            self.top_env = env
        self.last_env = env  # a body's names, for its outputs: (read at once)
        return previous

    def expanded(self, r: Node, level: int) -> bool:
        return bool(r.children) and (self.depth is None or level + 1 < self.depth)

    def entry(self, graph, r: Node, level: int, sources: list[Port]) -> Port:
        if r.kind in CONTAINERS and self.expanded(r, level):
            single = self.single_chain(r) if r.kind != "branches" else None
            if single is None:
                return self.cluster(graph, r, level, sources)
            return self.fused(graph, single, sources, container=r)
        node = self.node_id(r.qualname or r.name)
        graph.node(node, **self.leaf_attrs(r))
        loop = REGISTRY[r.type].draw.loop if r.type in REGISTRY else None
        if loop and r.output_shape is not None:  # steps over time, feeding itself its state
            self.edges.append((node, node, {"label": graphviz.escape(f" {loop} "),
                                            "style": "dashed", "dir": "back"}))
        ports = REGISTRY[r.type].inputs if r.kind == "merge" and r.type in REGISTRY else ()
        for i, s in enumerate(sources):
            self.edge(s, node)
            port = ports[i] if i < len(ports) else None
            if port is not None and s.shape is not None and (
                    port.batch_size_at is not None or port.size_of):
                # only a size is taken, no data: dashed (Expand's batch, Interpolate's like)
                what = "batch size" if port.batch_size_at is not None else "size"
                self.edges[-1][2].update(style="dashed", label=graphviz.escape(
                    f" {what} of {visible(fmt(s.shape))} "))
        return Port(node, r.output_shape)

    def cluster(self, graph, r: Node, level: int, sources: list[Port]) -> Port:
        cid = "cluster_" + self.node_id(r.qualname or r.name, "cluster.")
        with graph.subgraph(name=cid) as sub:
            broken = bool(self.errors_inside(r, 1))
            title = (f"<B>{_e(self.shown_name(r), LABEL_WIDTH)}</B>  "
                     f"{_e(_type_text(r), LABEL_WIDTH)}")
            if r.params:
                title += f"  <FONT COLOR=\"#555555\">{human(r.params)} params</FONT>"
            args = self.block_args(r)
            rows = [title] + ([_small(_e(a)) for a in args] if args else [])
            # the title is a borderless node at the top of the cluster, not the cluster's
            # label: edges are routed around nodes, whereas they run across a label's text
            header = self.node_id(r.qualname or r.name, "@title.")
            sub.node(header, label=_html(_rows(rows, align="LEFT")), shape="plaintext",
                     style="", margin="0", fontsize="11",
                     tooltip=_tip(f"{r.qualname}: {_type_text(r)}"))
            first = len(self.nodes)
            sub.attr(label="", fontsize="11",
                     style="rounded,filled" + (",dashed" if r.kind == "repeat" else ""),
                     fillcolor=CLUSTER_FILL.get(r.kind, "#f6f7f9"),
                     color=ERROR_LINE if broken else CLUSTER_LINE,
                     penwidth="1.6" if broken else "1.0", margin="10",
                     tooltip=_tip(f"{r.qualname}: {_type_text(r)}"))
            # the result of a group, block or repeat is its last active entry's, or its
            # outputs: (inputs: named, each from its source); branches give one each
            named = dict(zip(r.port_inputs, sources, strict=False)) or None
            outputs = {}
            if r.kind == "branches":
                out = self.side_by_side(sub, r, level, sources)
            else:
                out = self.scope(sub, r.children, level + 1, sources[0], named=named)
                outputs = {key: self.source(self.last_env, source, out)
                           for key, source in r.port_outputs}
            if len(self.nodes) > first:  # the title beside the first box, on its left
                with sub.subgraph() as row:
                    row.attr(rank="same")
                    row.node(header)
                    row.node(self.nodes[first])
                self.edges.append((header, self.nodes[first], {"style": "invis"}))
        if r.returns == "tensor" and outputs:  # its one output, the entry that gives it
            out = next(iter(outputs.values()))
        elif outputs:
            return Port(out.node, r.output_shape, part_ports={
                key: Port(p.node, p.shape) for key, p in outputs.items()})
        return Port(out.node, r.output_shape if r.output_shape is not None else out.shape,
                    part_ports=out.part_ports)

    def side_by_side(self, graph, r: Node, level: int, sources: list[Port]) -> Port:
        """A branches entry's entries, each on its input (the one, or its own): its outputs
        are theirs."""
        ends = {}
        for k, child in enumerate(r.children):
            inp = sources[k] if len(sources) > 1 else sources[0]
            port = self.entry(graph, child, level + 1, [Port(inp.node, inp.shape,
                                                             part=inp.part)])
            ends[child.name] = Port(port.node, port.shape)
        return Port(next(iter(ends.values())).node, r.output_shape, part_ports=ends)

    # ---------------------------------------------------------------- boxes

    def leaf_attrs(self, r: Node) -> dict[str, str]:
        collapsed = r.kind in CONTAINERS
        fam = "block" if collapsed else family(r.type)
        errors = self.problems.errors.get(id(r), [])
        if collapsed and not errors:
            errors = self.errors_inside(r, 2)
        warnings = self.problems.warnings.get(id(r), [])
        known = r.output_shape is not None
        symbol = _symbol(r) if not collapsed else None
        if symbol and not errors and known:
            single = len(symbol) == 1  # a number beside it (× 0.125) widens the circle
            return {
                "label": symbol, "shape": "circle" if single else "ellipse", "width": "0.3",
                "height": "0.3", "fixedsize": "true" if single else "false",
                "fontsize": "14" if single else "11",
                "fillcolor": FAMILY_COLOURS["merge"][0], "color": FAMILY_COLOURS["merge"][1],
                "tooltip": _tip(f"{r.qualname}: {r.type} → {fmt(r.output_shape)}"),
            }
        rows = [self.title(r.type if not collapsed else _type_text(r), self.shown_name(r),
                           known or errors)]
        kwargs = kwargs_as_written(r) if errors and not collapsed else r.kwargs
        args = (self.block_args(r) if collapsed
                else [key_args(r.type, kwargs)] if kwargs or known else [])
        rows += [_small(_e(a, LABEL_WIDTH)) for a in args if a]
        params = params_as_written(r) if errors and not collapsed else r.params
        rows.append(_small(_shape_params(r.output_shape, params,
                                         [shape for _, shape in r.outputs])))
        return self.styled(rows, fam, errors, warnings, known, collapsed,
                           f"{r.qualname}: {_call(r)}")

    def styled(self, rows: list[str], fam: str, errors: list[str], warnings: list[str],
               known: bool, collapsed: bool, tooltip: str) -> dict[str, str]:
        fill, line = FAMILY_COLOURS.get(fam, FAMILY_COLOURS["unknown"])
        attrs = {"fillcolor": fill, "color": line, "tooltip": _tip(tooltip)}
        if collapsed:
            attrs["shape"] = "box3d"
            attrs["style"] = "filled"
        for message in warnings[:2]:
            rows += [_small(_e(t), WARNING_TEXT) for t in _wrap("⚠ " + message)]
        if warnings and not errors:
            attrs["color"], attrs["penwidth"] = WARNING_LINE, "2"
        if errors:
            for message in errors[:2]:
                rows += [_small(_e(t), ERROR_TEXT) for t in _wrap("✖ " + message)]
            attrs.update(fillcolor=ERROR_FILL, color=ERROR_LINE, penwidth="2.2",
                         fontcolor=ERROR_TEXT)
            self.drawn_red = True
        elif not known:
            self.drawn_grey = True
            attrs.update(fillcolor="#f7f7f7", color=UNKNOWN_TEXT, fontcolor=UNKNOWN_TEXT,
                         style=attrs.get("style", "rounded,filled") + ",dashed")
        attrs["label"] = _html(_rows(rows))
        return attrs

    def shown_name(self, r: Node) -> str:
        """A repeat's copy by its name, 'layer2.0' where the name is a number; another
        unnamed entry as check's messages call it: 'layer 7', 'layer head.2'."""
        if r.copy is not None and r.name.isdigit():
            return ".".join(r.qualname.split(".")[-2:])
        if r.name.isdigit() and "." not in r.qualname:
            return f"layer {r.name}"
        if r.name.isdigit():  # inside a group: its tail, as messages end it (downsample.0)
            return ".".join(r.qualname.split(".")[-2:])
        return r.name

    def title(self, type_text: str, name: str, known: Any) -> str:
        shown = f"<B>{_e(type_text, LABEL_WIDTH)}</B>"
        if name and not name.isdigit():
            colour = "#555555" if known else UNKNOWN_TEXT
            shown += f"  <FONT COLOR=\"{colour}\">{_e(name, LABEL_WIDTH)}</FONT>"
        return shown

    def block_args(self, r: Node) -> list[str]:
        """A block's or repeat's arguments as written (first: included)."""
        if r.kind not in ("block", "repeat"):
            return []
        raw = r.written
        if not isinstance(raw, dict):
            return []
        type_name = r.type.split("×")[0]
        args = raw.get(type_name)
        args = dict(args) if isinstance(args, dict) else {}
        first = raw.get("first")  # a repeat's (its first copy has them merged in already)
        parts = []
        if args:
            parts.append(", ".join(f"{k} {size(v)}" for k, v in args.items()))
        if r.kind == "repeat" and isinstance(first, dict) and first:
            parts.append("first: " + ", ".join(f"{k} {size(v)}" for k, v in first.items()))
        return [t for p in parts for t in _wrap(p, 40, 3)]

    def errors_inside(self, r: Node, limit: int) -> list[str]:
        """The first ``limit`` distinct errors of the layers inside ``r`` (a box shows two)."""
        found: list[str] = []
        for _, c in r.walk():
            for m in self.problems.errors.get(id(c), []):
                if m not in found:
                    found.append(m)
                    if len(found) == limit:
                        return found
        return found

    # ---------------------------------------------------------------- compact

    def fuse(self, results: list[Node]) -> list[list[Node]]:
        """Conv + BN + ReLU (and BN + ReLU + Conv, Linear + ReLU) chains as one item each."""
        used = {s for r in results for s in r.sources}
        ok = [self.fusable(r) for r in results]
        runs: list[list[int]] = []
        for i, r in enumerate(results):
            joins = (runs and ok[i] and runs[-1][-1] == i - 1 and ok[i - 1]
                     and not r.sources and results[i - 1].name not in used)
            if joins:
                runs[-1].append(i)
            else:
                runs.append([i])
        items: list[list[Node]] = []
        for run in runs:
            if len(run) == 1 or not ok[run[0]]:
                items += [[results[i]] for i in run]
                continue
            weighted = [_fuse(results[i].type) == "weighted" for i in run]
            pre = not weighted[0] and any(weighted)  # BN + ReLU + Conv (pre-activation)
            chunks: list[list[int]] = [[]]
            for i, w in zip(run, weighted, strict=True):
                if w and not pre and chunks[-1]:
                    chunks.append([])
                chunks[-1].append(i)
                if w and pre:
                    chunks.append([])
            for chunk in chunks:
                if chunk:
                    items.append([results[i] for i in chunk])
        return items

    def fusable(self, r: Node) -> bool:
        return (r.kind == "layer" and _fuse(r.type) is not None and r.output_shape is not None
                and id(r) not in self.problems.errors and id(r) not in self.problems.warnings)

    def single_chain(self, r: Node) -> list[Node] | None:
        """Compact: a block whose whole body is one fusable chain becomes one box."""
        if not self.compact or r.kind == "repeat":
            return None
        items = self.fuse(r.children)
        if len(items) == 1 and len(items[0]) > 1 and not any(c.sources for c in r.children):
            return items[0]
        return None

    def fused(self, graph, chain: list[Node], sources: list[Port],
              container: Node | None = None) -> Port:
        first, last = chain[0], chain[-1]
        main = next((c for c in chain if _fuse(c.type) == "weighted"), first)
        fam = family(main.type)
        types = " + ".join(_draw(c.type).abbrev or c.type for c in chain)
        if container is not None:
            name, qual = container.name, container.qualname
            params = container.params
        else:
            name = f"{first.name}–{last.name}" if not first.name.isdigit() else \
                f"layers {first.name}–{last.name}" if "." not in first.qualname else \
                f"{self.shown_name(first)}–{last.name}"
            qual = first.qualname
            params = sum(c.params or 0 for c in chain)
        node = self.node_id(qual or name)
        rows = [self.title(types, name, True)]
        args = key_args(main.type, main.kwargs)
        if args:
            rows.append(_small(_e(args, LABEL_WIDTH)))
        rows.append(_small(_shape_params(last.output_shape, params)))
        tooltip = "; ".join(f"{c.qualname}: {_call(c)}" for c in chain)
        graph.node(node, **self.styled(rows, fam, [], [], True, False, tooltip))
        for s in sources:
            self.edge(s, node)
        return Port(node, last.output_shape)


def _resolution(shape: tuple[int, ...] | None) -> int | None:
    """The spatial size of a C×H×W-like output (H·W), None for one without space."""
    if shape is None or len(shape) < 3:
        return None
    return math.prod(shape[1:])


def _shape(shape: tuple[int, ...] | None) -> str:
    return fmt(shape) if shape is not None else "?"


def _shape_params(shape: tuple[int, ...] | None, params: int | None,
                  parts: list | None = None) -> str:
    """'64×8×8 · 36.9K params', escaped; the shape alone without parameters; an op giving
    several tensors shows each ('8, 8')."""
    shown = ", ".join(_shape(p) for p in parts) if parts else _shape(shape)
    return _e(_clip(shown, 40)) + (f" · {human(params)} params" if params else "")


def _type_text(r: Node) -> str:
    """'BasicBlock ×2' for a repeat, the block's name for a block, 'group' for a group."""
    if r.kind == "repeat":
        base, _, count = r.type.rpartition("×")
        return f"{base} ×{count}" if base else r.type
    return r.type


def _call(r: Node) -> str:
    if r.kind in CONTAINERS:
        return _type_text(r)
    args = ", ".join(f"{k}={v!r}" for k, v in r.kwargs.items())
    return f"{r.type}({args})"


def _small(text: str, colour: str = "#333333") -> str:
    return f"<FONT POINT-SIZE=\"9\" COLOR=\"{colour}\">{text}</FONT>"


def _rows(cells: Iterable[str], align: str = "CENTER") -> str:
    body = "".join(f"<TR><TD ALIGN=\"{align}\">{c}</TD></TR>" for c in cells)
    table = 'BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"'
    return f"<TABLE {table}>{body}</TABLE>"


def _html(inner: str) -> str:
    return f"<{inner}>"


_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.]")


def _dot_id(text: str) -> str:
    """``text`` made a DOT id part: ASCII letters, digits, '_' and '.' only, 64 at most."""
    return _NOT_IN_ID.sub("_", text[:64])


# ------------------------------------------------------------------ public API


def _checked(source, input_shape=None) -> tuple[CheckResult, Any]:
    """(CheckResult, Document or None) for a path, YAML text, Spec or CheckResult."""
    if isinstance(source, CheckResult):
        return source, None
    if not isinstance(source, Spec):
        try:
            source = load(source)
        except SpecError:
            return check(source, input_shape), None  # check's result for unreadable YAML
    return check(source, input_shape), source.doc


def graph(source, depth: int | None = None, rankdir: str = "TB", compact: bool = False,
          input_shape: tuple[int, ...] | None = None) -> graphviz.Digraph:
    """The diagram of a spec (a path, YAML text, a ``Spec`` or a ``CheckResult``) as a
    ``graphviz.Digraph``.  ``depth``: draw groups, blocks and repeats only that many levels
    deep (1: the top-level entries, each container one box); ``compact``: fuse Conv + BN +
    ReLU chains into one box."""
    _check_options(depth, rankdir)
    return _graph(*_checked(source, input_shape), depth, rankdir, compact)


def _check_options(depth: int | None, rankdir: str) -> None:
    if depth is not None and depth < 1:
        raise ValueError("depth must be 1 or more (1: only the top-level entries)")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be TB or LR, got {rankdir!r}")


def _graph(result: CheckResult, doc, depth: int | None, rankdir: str,
           compact: bool, note: str | None = None) -> graphviz.Digraph:
    """The diagram of a checked spec; ``doc``, its document (None: not at hand), places the
    diagnostics by their position in the YAML; ``note`` goes under the caption."""
    problems = attach(result, doc)
    net = result.network
    name = net.name if net else Path(result.file).name
    drawing = _Drawing(result, problems, depth, rankdir, compact, name, doc)
    g = drawing.g
    if not result.layers:
        _unreadable(g, result)
        return g
    drawing.draw()
    caption = _caption(result, problems, drawing.drawn_red, drawing.drawn_grey)
    if note:
        caption += [_small(_e(t), WARNING_TEXT) for t in _wrap(note, 90, 3)]
    g.attr("graph", label=_html(_rows(caption)))
    return g


def layout_depth(result: CheckResult, depth: int | None) -> tuple[int | None, str | None]:
    """(the depth to lay out at, a note or None): ``depth`` itself unless the diagram would
    have more than MAX_LAYOUT_BOXES boxes; then the deepest that keeps within it, and a note
    saying so.  Raises DiagramTooLarge when even the top level alone is too many."""
    per_level: dict[int, int] = {}
    for top in result.layers:
        for level, _ in top.walk():
            per_level[level] = per_level.get(level, 0) + 1

    def boxes(d: int) -> int:  # a box per layer or collapsed container, a title per cluster
        return sum(n for level, n in per_level.items() if level < d) + 2  # input, output

    levels = max(per_level, default=0) + 1
    wanted = min(depth, levels) if depth is not None else levels
    if boxes(wanted) <= MAX_LAYOUT_BOXES:
        return depth, None
    fitting = [d for d in range(1, wanted) if boxes(d) <= MAX_LAYOUT_BOXES]
    if not fitting:
        raise DiagramTooLarge(
            f"the diagram would have {boxes(1):,} boxes even at --depth 1, more than "
            f"Graphviz's dot lays out in reasonable time ({MAX_LAYOUT_BOXES:,}); for the DOT "
            "text, render it to a .dot file (netspec render SPEC -o net.dot)")
    chosen = max(fitting)
    full = "full diagram" if depth is None else f"diagram at --depth {depth}"
    return chosen, (f"drawn {chosen} level{'s' if chosen != 1 else ''} deep (--depth "
                    f"{chosen}): the {full} would have {boxes(wanted):,} boxes, more than "
                    f"Graphviz's dot lays out in reasonable time ({MAX_LAYOUT_BOXES:,})")


def _caption(result: CheckResult, problems: Problems, red: bool = False,
             grey: bool = False) -> list[str]:
    """The title: the network, its ports and parameters (the layers as written), and a
    legend of the error colours the diagram has (``red``, ``grey``: boxes drawn so)."""
    net = result.network
    rows = [f"<FONT POINT-SIZE=\"16\"><B>{_e(net.name, LABEL_WIDTH)}</B></FONT>"]
    ports = (", ".join(f"{i.name} {fmt(i.shape)}" for i in net.inputs) if net.inputs
             else f"input {fmt(net.input_shape)}")
    outputs = (", ".join(f"{o.key} {_shape(o.shape)}" for o in net.outputs) if net.outputs
               else f"output {_shape(result.output_shape)}")
    written = total_as_written(result)
    params = f"{written:,} parameters" + (" as written" if written != result.total_params
                                          else "")
    rows.append(_small(_e(f"{Path(result.file).name} · {ports}, {outputs} · {params}"),
                       "#444444"))
    n = len(result.errors)
    if n:
        legend = [text for drawn, text in ((red, "red boxes"),
                                           (grey, "grey: shape unknown after an error"))
                  if drawn]
        rows.append(_small(f"<B>{n} error{'s' if n != 1 else ''}</B>"
                           + (f" ({'; '.join(legend)})" if legend else ""), ERROR_TEXT))
    for d in problems.unplaced[:4]:
        for t in _wrap(f"{d.line}:{d.col}: {d.severity}: {d.message}", 90, 3):
            rows.append(_small(_e(t), ERROR_TEXT if d.severity == "error" else WARNING_TEXT))
    return rows


def _unreadable(g: graphviz.Digraph, result: CheckResult) -> None:
    """A spec with no layers to draw (unreadable YAML, no input, ...): one red box."""
    n = len(result.errors)
    rows = [f"<B>{_e(Path(result.file).name, LABEL_WIDTH)}</B>",
            _small(f"{n} error{'s' if n != 1 else ''}: nothing to draw", ERROR_TEXT)]
    for d in result.diagnostics[:6]:
        for t in _wrap(f"{d.line}:{d.col}: {d.severity}: {d.message}", 60, 6):
            rows.append(_small(_e(t), ERROR_TEXT))
    g.node("@error", label=_html(_rows(rows, align="LEFT")), fillcolor=ERROR_FILL,
           color=ERROR_LINE, penwidth="2.2", fontcolor=ERROR_TEXT)


def to_dot(source, **options: Any) -> str:
    """The DOT text of a spec's diagram (the same spec and options give the same text)."""
    return graph(source, **options).source


def format_for(out: str | os.PathLike, fmt_: str | None = None) -> str:
    """The output format: ``fmt_`` if given, else the file's suffix (svg, png, pdf, dot)."""
    chosen = (fmt_ or Path(out).suffix.lstrip(".")).lower()
    if chosen == "gv":
        chosen = "dot"
    if chosen not in FORMATS:
        raise ValueError(
            f"cannot tell the format of '{out}': use a .svg, .png, .pdf or .dot file, or "
            f"--format {{{','.join(FORMATS)}}}"
        )
    return chosen


PNG_DPI = 144  # bitmaps at 1.5× so that the 9-point shapes stay readable
PNG_DPI_LARGE = 96  # ... up to this many boxes; larger diagrams at 1× (SVG is better there)
PNG_LARGE = 150


def layout(g: graphviz.Digraph, fmt_: str) -> bytes:
    """Run ``dot`` on the diagram.  Raises ``graphviz.ExecutableNotFound`` without it and
    ``DotFailed`` (one line: the exit status or signal and dot's last message) when it
    fails or crashes."""
    boxes = sum(" [label=" in line and " -> " not in line for line in g.body)
    if boxes > MAX_LAYOUT_BOXES + _MAX_TITLES:
        # graph() draws what it is asked; render() first picks a depth that dot can lay out
        raise DiagramTooLarge(
            f"the diagram has {boxes:,} boxes, more than Graphviz's dot lays out in reasonable "
            f"time ({MAX_LAYOUT_BOXES:,}); draw it less deep (depth=...), or with "
            "netspec.render.render, which chooses the depth")
    if fmt_ == "png":
        g = g.copy()
        g.attr("graph", dpi=str(PNG_DPI if boxes <= PNG_LARGE else PNG_DPI_LARGE))
    program = shutil.which("dot")
    if program is None:
        raise graphviz.ExecutableNotFound(["dot"])
    try:
        # stderr kept to itself: dot's 'scaling to fit cairo's bitmap limit' notes about
        # huge PNGs are no news, and its message is in DotFailed when it fails
        done = subprocess.run([program, "-Kdot", f"-T{fmt_}"], input=g.source.encode("utf-8"),
                              capture_output=True, check=False)
    except OSError as exc:
        raise DotFailed(f"cannot run Graphviz's dot ({program}): {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise DotFailed(f"Graphviz's dot failed ({_exit_text(done.returncode)})"
                        + _last_line(done.stderr))
    return done.stdout


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return f": {_clip(visible(lines[-1].strip()), 200)}" if lines else ""


def render(source, out: str | os.PathLike, format: str | None = None, depth: int | None = None,
           rankdir: str = "TB", compact: bool = False,
           input_shape: tuple[int, ...] | None = None) -> Path:
    """Draw a spec into ``out`` (svg, png, pdf or dot by suffix or ``format``).  Raises
    ``DotNotFound`` (after writing the DOT text next to ``out``) when Graphviz is missing,
    ``DotFailed`` (likewise) when dot fails, ``DiagramTooLarge`` when even ``depth`` 1 has
    more boxes than dot can lay out.  A diagram too large at ``depth`` is drawn less deep,
    with a note in its caption (see ``layout_depth``)."""
    _check_options(depth, rankdir)
    result, doc = _checked(source, input_shape)
    return render_checked(result, doc, out, format, depth, rankdir, compact)[0]


def render_checked(result: CheckResult, doc, out: str | os.PathLike, format: str | None = None,
                   depth: int | None = None, rankdir: str = "TB", compact: bool = False
                   ) -> tuple[Path, str | None]:
    """``render`` for a spec already checked (``doc``: its document, or None); returns
    (the file written, the note when the diagram was drawn less deep than asked)."""
    out = Path(out)
    fmt_ = format_for(out, format)
    note = None
    if fmt_ != "dot":  # the DOT text itself has no size limit
        depth, note = layout_depth(result, depth)
    g = _graph(result, doc, depth, rankdir, compact, note)
    if fmt_ == "dot":
        out.write_text(g.source, encoding="utf-8")
        return out, None
    try:
        data = layout(g, fmt_)
    except graphviz.ExecutableNotFound:
        dot_file = out.with_suffix(".dot")
        dot_file.write_text(g.source, encoding="utf-8")
        raise DotNotFound(dot_file) from None
    except DotFailed as exc:
        dot_file = out.with_suffix(".dot")
        dot_file.write_text(g.source, encoding="utf-8")
        raise DotFailed(f"{exc} (the DOT text is in {dot_file})") from None
    out.write_bytes(data)
    return out, note
