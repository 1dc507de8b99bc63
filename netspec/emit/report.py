"""netspec report: one self-contained HTML page for sharing a network: the diagram (inline
SVG), the summary table and the check result.  No scripts, no fonts or styles from
elsewhere, no external URLs: the file opens anywhere, offline.  No torch either."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

import graphviz

from netspec.core.diagnostics import visible
from netspec.core.version import __version__
from netspec.emit.render import (
    ERROR_FILL,
    ERROR_LINE,
    FAMILY_COLOURS,
    FAMILY_NAMES,
    INSTALL_HINT,
    DiagramTooLarge,
    DotFailed,
    _check_options,
    _checked,
    _graph,
    _shape,
    layout,
    layout_depth,
)
from netspec.emit.summary import summarize
from netspec.pipeline.check import CheckResult

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1200px;
       color: #222; padding: 0 16px; }
h1 { margin-bottom: 4px; }
.meta { color: #555; margin: 0 0 16px 0; }
.status { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: bold; }
.ok { background: #dbf2dc; color: #1f6b25; }
.bad { background: #ffe0e0; color: #b00000; }
.diag { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px;
        white-space: pre-wrap; margin: 2px 0; }
.error { color: #b00000; } .warning { color: #8a5a00; } .note { color: #555; }
.diagram { border: 1px solid #ddd; border-radius: 6px; padding: 8px; overflow: auto;
           text-align: center; background: #fff; }
.diagram svg { max-width: 100%; height: auto; }
.legend span { display: inline-block; margin: 2px 10px 2px 0; font-size: 13px; }
.legend i { display: inline-block; width: 14px; height: 14px; border-radius: 3px;
            vertical-align: -2px; margin-right: 4px; border: 1px solid; }
pre.table { font-size: 13px; background: #f7f7f9; padding: 12px; border-radius: 6px;
            overflow: auto; }
footer { color: #888; font-size: 12px; margin-top: 24px; }
"""


def _text(text: Any) -> str:
    """Text for the page: control and direction characters made visible, then escaped."""
    return html.escape(visible(str(text)))


def summary_table(result: CheckResult, depth: int | None = None) -> str:
    """The summary table as text, ``depth`` levels deep (check's --depth: 1 is the top
    level): ``netspec summary``'s, or ``netspec check``'s for a spec with errors (which the
    summary does not take)."""
    if result.network is None or not result.layers:
        return ""
    return summarize(result).table(depth=depth) if result.ok else result.table(depth)


def _svg(g: graphviz.Digraph) -> str:
    """The diagram as inline SVG.  Raises ``graphviz.ExecutableNotFound`` without Graphviz,
    ``DotFailed`` when dot fails."""
    svg = layout(g, "svg").decode("utf-8")
    # inline: no XML prolog, doctype (an external DTD URL) or comments
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    return svg.strip()


def _diagram(result: CheckResult, doc, depth: int | None, rankdir: str, compact: bool
             ) -> tuple[str, str | None, str | None, str | None]:
    """(inline SVG or '', why there is none, the DOT text when dot is missing, the note when
    the diagram is drawn less deep than asked)."""
    try:
        depth, note = layout_depth(result, depth)
    except DiagramTooLarge as exc:
        return "", str(exc), None, None
    g = _graph(result, doc, depth, rankdir, compact, note)
    try:
        return _svg(g), None, None, note
    except graphviz.ExecutableNotFound:
        return "", f"Graphviz's 'dot' program is not installed; {INSTALL_HINT}", g.source, None
    except DotFailed as exc:
        return "", str(exc), None, None


def html_report(source: Any, depth: int | None = None, rankdir: str = "TB",
                compact: bool = False, input_shape: tuple[int, ...] | None = None
                ) -> tuple[str, CheckResult, str | None]:
    """(the HTML page, the check result, None or why the page has no diagram: dot missing
    or failed, or the network too large to lay out)."""
    result, doc = _checked(source, input_shape)
    _check_options(depth, rankdir)
    svg, no_diagram, dot_text, note = _diagram(result, doc, depth, rankdir, compact)
    e = _text
    net = result.network
    title = net.name if net else Path(result.file).name
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(title)} · netspec report</title>", f"<style>{STYLE}</style>",
             "</head><body>", f"<h1>{e(title)}</h1>"]
    n_err, n_warn = len(result.errors), len(result.warnings)
    if net is not None:
        parts.append(f'<p class="meta">{e(result.file)} · input {e(_shape(net.input_shape))}'
                     f"{' ' + e(net.input_dtype) if net.input_dtype != 'float32' else ''}"
                     f" · output {e(_shape(result.output_shape))} · "
                     f"{result.total_params:,} parameters</p>")
    else:
        parts.append(f'<p class="meta">{e(result.file)}</p>')
    if n_err:
        parts.append(f'<p><span class="status bad">{n_err} error{"s" if n_err != 1 else ""}'
                     "</span> the broken layers are red in the diagram; grey ones come after "
                     "an error and are not shape-checked</p>")
    else:
        warn = f", {n_warn} warning{'s' if n_warn != 1 else ''}" if n_warn else ""
        parts.append(f'<p><span class="status ok">check passed{warn}</span></p>')
    parts.append("<h2>Check</h2>")
    if result.diagnostics:
        for d in result.diagnostics:
            parts.append(f'<p class="diag {e(d.severity)}">{e(d.format())}</p>')
    else:
        parts.append('<p class="diag note">no errors, no warnings</p>')
    parts.append("<h2>Diagram</h2>")
    if note:
        parts.append(f'<p class="diag note">{e(note)}</p>')
    if svg:
        parts.append(f'<div class="diagram">{svg}</div>')
    elif dot_text is not None:
        parts.append(f'<p class="error">No diagram: Graphviz\'s <code>dot</code> program is '
                     f"not installed; {e(INSTALL_HINT)}. The DOT text:</p>"
                     f'<pre class="table">{e(dot_text)}</pre>')
    else:
        parts.append(f'<p class="error">No diagram: {e(no_diagram or "")}</p>')
    parts.append('<p class="legend">' + "".join(
        f'<span><i style="background:{fill};border-color:{line}"></i>'
        f"{e(FAMILY_NAMES[fam])}</span>"
        for fam, (fill, line) in FAMILY_COLOURS.items() if fam in FAMILY_NAMES
    ) + f'<span><i style="background:{ERROR_FILL};border-color:{ERROR_LINE}"></i>error</span>'
      "</p>")
    table = summary_table(result, depth)
    if table:
        parts.append("<h2>Summary</h2>")
        parts.append(f'<pre class="table">{e(table)}</pre>')
    parts.append(f"<footer>netspec {e(__version__)} · <code>netspec report "
                 f"{e(Path(result.file).name)}</code></footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n", result, no_diagram


def report(source: Any, out: str | os.PathLike, **options: Any
           ) -> tuple[CheckResult, str | None]:
    """Write the HTML report of a spec to ``out``; returns (check result, None or why the
    report has no diagram)."""
    text, result, no_diagram = html_report(source, **options)
    Path(out).write_text(text, encoding="utf-8")
    return result, no_diagram
