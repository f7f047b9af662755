"""HTML building blocks of the report: styles, escaped tables, figures and sections.

Everything is inline (styles, figures as data URIs), so the report is one file that
opens anywhere, offline. Every table shows all of its columns at a 1,400 px wide window
and wider: tables take the width they are given and long text wraps inside its cell
instead of pushing columns out of sight.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #fff; line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #0072B2; padding-bottom: 0.2rem; margin-top: 2.5rem; }
.facts { color: #57606a; margin: 0.2rem 0 1rem; }
.facts span { margin-right: 1.2rem; display: inline-block; }
.headline { background: #eef6fb; border-left: 4px solid #0072B2; padding: 0.8rem 1rem; }
.warning { background: #fff8e6; border-left: 4px solid #E69F00; padding: 0.5rem 1rem;
           margin: 0.4rem 0; }
.note { color: #57606a; font-size: 0.9rem; }
nav ol { columns: 2; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; max-width: 100%; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: right;
         vertical-align: top; }
th { background: #f6f8fa; }
td.text, th.text { text-align: left; overflow-wrap: break-word; }
table.wide { width: 100%; font-size: 0.85rem; }
table.wide td.text { overflow-wrap: anywhere; }
.side-by-side { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }
.side-by-side > div { flex: 1 1 480px; min-width: 0; }
.side-by-side > div > table { width: 100%; }
.side-by-side.narrow { gap: 1rem; }
.side-by-side.narrow > div { flex: 0 1 auto; }
.side-by-side.narrow > div > table { width: auto; font-size: 0.85rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.9rem; }
table.leads { font-size: 0.82rem; width: 100%; }
table.leads td { white-space: normal; }
table.leads td:first-child { white-space: nowrap; }
table.edits td:first-child { white-space: nowrap; }
table.edits td:nth-child(2) { min-width: 16rem; }
tr.kept td:first-child { color: #57606a; }
tr.changed td:first-child { color: #0072B2; font-weight: 600; }
tr.added td:first-child { color: #009E73; font-weight: 600; }
tr.removed td:first-child { color: #D55E00; font-weight: 600; }
"""


def escape(value: object) -> str:
    """``value`` as HTML text (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None, index: bool = True,
          css: str = "", row_class: str | None = None) -> str:
    """An HTML table; numbers formatted by column, text left-aligned, everything escaped.

    Args:
        frame: The rows.
        formats: Column -> format spec for its numbers (e.g. ``".1%"``).
        index: Show the index as the first column.
        css: Class of the table (``wide``: the whole width, text wrapping in its cells).
        row_class: A column whose value is each row's class (the column is still shown).
    """
    formats = formats or {}
    shown = frame.reset_index() if index else frame
    text_columns = {c for c in shown.columns if c not in formats
                    and not pd.api.types.is_numeric_dtype(shown[c])}
    head = "".join(f'<th class="{"text" if c in text_columns else "num"}">{escape(c)}</th>'
                   for c in shown.columns)
    body = []
    for record in shown.itertuples(index=False):
        cells = []
        for column, value in zip(shown.columns, record, strict=True):
            kind = "text" if column in text_columns else "num"
            cells.append(f'<td class="{kind}">{escape(cell(value, formats.get(column)))}</td>')
        tag = ("<tr>" if row_class is None else
               f'<tr class="{escape(record[list(shown.columns).index(row_class)])}">')
        body.append(tag + "".join(cells) + "</tr>")
    opening = f'<table class="{escape(css)}">' if css else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def cell(value: object, fmt: str | None) -> str:
    """A cell's text: ``-`` for missing, numbers in ``fmt``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if fmt and isinstance(value, int | float | np.number):
        return format(value, fmt)
    return str(value)


def figure(uri: str, caption: str) -> str:
    """An embedded figure with its caption."""
    return (f'<figure><img src="{uri}" alt="{escape(caption)}"><figcaption>'
            f"{escape(caption)}</figcaption></figure>")


def section(anchor: str, title: str, body: str) -> str:
    """A titled section the table of contents links to."""
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def lines(joined: str) -> str:
    """``"a; b"`` (how rules fired and reasons are joined) as escaped lines; ``-`` if none."""
    items = [item for item in str(joined).split("; ") if item]
    return "<br>".join(escape(item) for item in items) if items else "-"


def page(title: str, facts: dict[str, str], headline: str,
         sections: list[tuple[str, str, str]]) -> str:
    """The whole document: title, facts, headline, contents and sections."""
    nav = "".join(f'<li><a href="#{a}">{escape(t)}</a></li>' for a, t, _ in sections)
    shown_facts = "".join(f"<span><b>{escape(k)}:</b> {escape(v)}</span>"
                          for k, v in facts.items())
    body = "".join(section(a, t, b) for a, t, b in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Lead scoring report: {escape(title)}</title><style>{STYLE}</style>"
            f"</head><body><main><h1>Lead scoring report: {escape(title)}</h1>"
            f'<p class="facts">{shown_facts}</p>{headline}<nav><ol>{nav}</ol></nav>{body}'
            "</main></body></html>")
