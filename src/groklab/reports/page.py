"""One self-contained HTML page: plotly.js inlined once, tables, images as data URIs, and interactive
figures (hover, legend toggles, zoom). Nothing is fetched when the page is opened."""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groklab.jsonsafe import finite
from groklab.version import __version__

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.PASS { background: #d9f2d9; font-weight: bold; } .FAIL { background: #f8d7d7; font-weight: bold; } .na { background: #eee; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; } .figure { width: 580px; height: 380px; border: 1px solid #eee; }
.meta { color: #666; font-size: 0.85em; } pre { background: #f7f7f7; padding: 0.6em; font-size: 0.8em; overflow-x: auto; }
img.static { max-width: 100%; border: 1px solid #eee; }
"""

SCRIPT = """
async function groklabDraw() {
  const divs = document.querySelectorAll("div.figure");
  for (const div of divs) {
    const spec = JSON.parse(document.getElementById(div.id + "-spec").textContent);
    await Plotly.newPlot(div, spec.data, spec.layout, {responsive: true, displaylogo: false});
    div.dataset.rendered = String(div.data.length);
  }
  document.body.dataset.figuresRendered = String(divs.length);
}
groklabDraw();
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def table(columns: list[str], rows: list[list[Any]], classes: dict[int, str] | None = None) -> str:
    """An HTML table; `classes` gives a column index whose cell values become the cells' CSS class (PASS, FAIL)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = "num" if isinstance(v, int | float) and not isinstance(v, bool) else ""
            if classes and i in classes:
                cls = str(v).replace("/", "")
            cells.append(f'<td class="{cls}">{esc(fmt(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass
class Page:
    """A report being assembled: sections of HTML in order, each figure a div with its JSON spec beside it."""

    title: str
    parts: list[str] = field(default_factory=list)
    n_figures: int = 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{esc(text)}</h{level}>")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def text(self, text: str, cls: str = "") -> None:
        self.parts.append(f'<p class="{cls}">{esc(text)}</p>')

    def pre(self, text: str, summary: str | None = None) -> None:
        block = f"<pre>{esc(text)}</pre>"
        self.parts.append(f"<details><summary>{esc(summary)}</summary>{block}</details>" if summary else block)

    def image(self, path: Path) -> None:
        """A PNG/SVG figure embedded as a data URI."""
        mime = "image/svg+xml" if path.suffix.lower() == ".svg" else "image/png"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.parts.append(f'<h3>{esc(path.name)}</h3><img class="static" alt="{esc(path.name)}" src="data:{mime};base64,{data}">')

    def figures(self, specs: list[dict[str, Any]]) -> None:
        """Interactive figures, each {"data": traces, "layout": ...} in plotly's JSON form."""
        out = []
        for spec in specs:
            self.n_figures += 1
            fid = f"fig{self.n_figures}"
            payload = json.dumps(finite(spec), allow_nan=False).replace("</", "<\\/")
            out.append(
                f'<div class="figure" id="{fid}" data-series="{len(spec["data"])}"></div>'
                f'<script type="application/json" id="{fid}-spec">{payload}</script>'
            )
        self.parts.append('<div class="figures">' + "".join(out) + "</div>")

    def html(self) -> str:
        from plotly.offline import get_plotlyjs

        meta = f"groklab {esc(__version__)}"
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(self.title)}</title><style>{STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head>\n<body>"
            f'<h1>{esc(self.title)}</h1><p class="meta">{meta}</p>' + "\n".join(self.parts) + f"<script>{SCRIPT}</script></body></html>\n"
        )
