"""The report's document model and its two renderings: self-contained HTML and Markdown.

A report is a list of :class:`Section` of blocks (:class:`Para`, :class:`Table`, :class:`Plot`,
:class:`Pre`). Every string is treated as untrusted text: the HTML renderer escapes it with
:func:`html.escape` (quotes included, so nothing reaches an attribute unescaped), the Markdown
renderer escapes Markdown and HTML metacharacters. The HTML has no script, no external URL
(fonts, styles, images: none fetched); plots are inline SVG (already escaped by
:mod:`backtest.report.svg`). Markdown plots are SVG files beside the ``.md``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "Para",
    "Table",
    "Plot",
    "Pre",
    "Section",
    "Document",
    "render_html",
    "render_markdown",
    "md_escape",
    "visible",
]


@dataclass(frozen=True)
class Para:
    text: str
    css: str = ""  # "note" (greyed, e.g. "not computed in this run")


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    css: str = ""


@dataclass(frozen=True)
class Plot:
    name: str  # file stem for the Markdown version (safe: [a-z0-9_-])
    svg: str
    caption: str


@dataclass(frozen=True)
class Pre:
    text: str
    summary: str = ""  # collapsible (<details>) when set


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Para | Table | Plot | Pre] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1000px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 18px}table{border-collapse:collapse;margin:10px 0 14px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv td:first-child{font-weight:600;white-space:nowrap}
code,pre{font-family:Menlo,Consolas,monospace;font-size:12px}
pre{background:#f6f6f6;padding:10px;overflow:auto;max-height:420px}.note{color:#777;font-style:italic}
.tw{max-width:100%;overflow-x:auto}
figure{margin:12px 0 20px}figcaption{color:#555;font-size:12px}nav a{margin-right:12px;font-size:13px}
.figs{display:flex;flex-wrap:wrap;gap:12px}
.fig{border:1px solid #ddd;border-radius:4px;padding:8px 12px;min-width:150px}
.fig .v{font-size:20px;font-weight:600}.fig .k{color:#666;font-size:12px}
"""

_NUM = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( [A-Za-z%*/]+)?$")


#: characters never written as they are: C0 and C1 controls but tab, newline and CR (XML 1.0
#: forbids the C0 ones: one in a token symbol made an SVG file ill-formed), bidirectional marks,
#: overrides and isolates (they reorder the text that follows: a symbol could make the address
#: next to it read backwards), surrogates and the non-characters U+FFFE/U+FFFF
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)


def visible(s: object) -> str:
    """``s`` with every character of :data:`_INVISIBLE` shown as its escape (``\\u202e``)."""
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(s))


def _e(s: object) -> str:
    return html.escape(visible(s), quote=True)


def render_html(doc: Document, headline: Sequence[tuple[str, str]] = ()) -> str:
    """The document as one self-contained HTML page (no scripts, no external resources)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(doc.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body><main>",
        f"<h1>{_e(doc.title)}</h1>",
        f'<p class="sub">{_e(doc.subtitle)}</p>',
    ]
    if headline:
        out.append('<div class="figs" id="headline">')
        for k, v in headline:
            out.append(f'<div class="fig"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>')
        out.append("</div>")
    out.append(
        "<nav>" + "".join(f'<a href="#{_e(s.anchor)}">{_e(s.title)}</a>' for s in doc.sections) + "</nav>"
    )
    for s in doc.sections:
        out.append(f'<section id="{_e(s.anchor)}"><h2>{_e(s.title)}</h2>')
        for b in s.blocks:
            out.append(_html_block(b))
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def _html_block(b: Para | Table | Plot | Pre) -> str:
    if isinstance(b, Para):
        return f'<p class="{_e(b.css)}">{_e(b.text)}</p>' if b.css else f"<p>{_e(b.text)}</p>"
    if isinstance(b, Table):
        cls = f' class="{_e(b.css)}"' if b.css else ""
        head = "".join(f"<th>{_e(h)}</th>" for h in b.headers)
        rows = []
        for r in b.rows:
            cells = "".join(
                f'<td class="n">{_e(c)}</td>' if _NUM.match(str(c)) else f"<td>{_e(c)}</td>" for c in r
            )
            rows.append(f"<tr>{cells}</tr>")
        return (f'<div class="tw"><table{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
                "</table></div>")
    if isinstance(b, Plot):
        return f"<figure>{b.svg}<figcaption>{_e(b.caption)}</figcaption></figure>"
    if b.summary:
        return f"<details><summary>{_e(b.summary)}</summary><pre>{_e(b.text)}</pre></details>"
    return f"<pre>{_e(b.text)}</pre>"


#: Markdown metacharacters that act anywhere in a line (emphasis, code, links, tables, strikethrough,
#: and GitHub's math: ``$...$`` is typeset as LaTeX in Markdown files)
_MD_META = re.compile(r"([\\`*\[\]|~$])")
#: ``_`` opens or closes emphasis only at a word boundary (CommonMark): ``aave_v3`` stays as it is
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: what acts only at the start of a line: a heading, a list item, a setext or thematic rule
_MD_LINE_START = re.compile(r"^(#|[-+](?=\s|$)|=+$|-+$)")
_MD_ORDERED = re.compile(r"^(\d+)([.)])(?=\s|$)")
#: GitHub's autolinks: ``scheme://...`` (the ``:`` escaped, no link) and ``www.`` (its first ``w``
#: as an entity, the same text); e-mail addresses still become ``mailto:`` links (no escape stops
#: cmark-gfm's, short of changing the text)
_MD_SCHEME = re.compile(r"://")
_MD_WWW = re.compile(r"(?<![A-Za-z0-9])www\.")


def md_escape(s: object) -> str:
    """Text safe inside Markdown (and a table cell): HTML metacharacters become entities, Markdown
    metacharacters are backslash-escaped where they would act (so run ids, hashes, numbers and
    field names stay copyable from the raw file: ``bt-72e1…``, ``0.00``, ``aave_v3``), newlines
    become spaces, and on-chain text never becomes a web link (GitHub autolinks ``https://…`` and
    ``www.…`` in plain text: a token named like a URL would be a clickable link in report.md)."""
    t = html.escape(visible(s), quote=True).replace("\r", " ").replace("\n", " ")
    t = _MD_UNDERSCORE.sub(r"\\_", _MD_META.sub(r"\\\1", t))
    t = _MD_WWW.sub("&#119;ww.", _MD_SCHEME.sub(r"\\://", t))
    return _MD_ORDERED.sub(r"\1\\\2", _MD_LINE_START.sub(r"\\\1", t))


def render_markdown(doc: Document, plots_dir: str, headline: Sequence[tuple[str, str]] = ()) -> str:
    """The document as Markdown; plots are referenced as ``plots_dir/<name>.svg``."""
    out = [f"# {md_escape(doc.title)}", "", md_escape(doc.subtitle), ""]
    if headline:
        out += ["| figure | value |", "|---|---|"]
        out += [f"| {md_escape(k)} | {md_escape(v)} |" for k, v in headline]
        out.append("")
    for s in doc.sections:
        out += [f"## {md_escape(s.title)}", ""]
        for b in s.blocks:
            if isinstance(b, Para):
                out += [f"*{md_escape(b.text)}*" if b.css else md_escape(b.text), ""]
            elif isinstance(b, Table):
                out.append("| " + " | ".join(md_escape(h) for h in b.headers) + " |")
                out.append("|" + "---|" * len(b.headers))
                out += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in b.rows]
                out.append("")
            elif isinstance(b, Plot):
                out += [f"![{md_escape(b.caption)}]({plots_dir}/{b.name}.svg)", "", md_escape(b.caption), ""]
            else:
                fence = "````" if "```" in b.text else "```"
                if b.summary:
                    out += [md_escape(b.summary), ""]
                out += [f"{fence}text", b.text, fence, ""]
    return "\n".join(out).rstrip() + "\n"
