"""Rich display in Jupyter: derivations, EM results, check reports and solutions as math and tables.

The classes call these from ``_repr_html_`` / ``_repr_markdown_`` / ``_repr_latex_``; HTML uses
the sheets' sanitised MathML (no network, no script), Markdown uses ``$$ ... $$`` math.

>>> from emsym.spec import load_spec
>>> from emsym.derive import derive
>>> d = derive(load_spec("standard"))
>>> "<math" in d._repr_html_() and "M-step" in d._repr_markdown_()
True
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["check_html", "derivation_html", "derivation_latex", "derivation_markdown", "result_html"]


def _mathml(tex: str, display: bool = True) -> str:
    """The sheets' sanitised MathML (texsafe's allow-list over latex2mathml)."""
    import latex2mathml.converter

    from .texsafe import clean_mathml

    return clean_mathml(latex2mathml.converter.convert(tex, display="block" if display else "inline"))


def derivation_html(d: Any) -> str:
    out = [f"<h4>EM for {html.escape(d.spec.label())} ({html.escape(d.method)})</h4>", "<ol>"]
    for s in d.steps:
        out.append(f"<li><strong>{html.escape(s.title)}.</strong> {html.escape(s.text)}{_mathml(s.latex)}</li>")
    out.append("</ol><p><strong>M-step updates</strong></p>")
    for u in d.updates:
        out.append(_mathml(f"{_lhs(u)} = {u.latex}"))
    out += [f"<p><em>{html.escape(n)}</em></p>" for n in d.notes]
    return "\n".join(out)


def derivation_markdown(d: Any) -> str:
    lines = [f"**EM for {d.spec.label()}** ({d.method})", ""]
    for s in d.steps:
        lines += [f"1. **{s.title}.** {s.text}", "", f"   $$ {s.latex} $$", ""]
    lines += ["**M-step updates**", ""] + [f"$$ {_lhs(u)} = {u.latex} $$" for u in d.updates]
    return "\n".join(lines)


def _lhs(u: Any) -> str:
    from .printing import latex

    return latex(u.param.symbol)


def derivation_latex(d: Any) -> str:
    rows = " \\\\ ".join(f"{_lhs(u)} &= {u.latex}" for u in d.updates)
    return f"$$\\begin{{aligned}} {rows} \\end{{aligned}}$$"


def _value(v) -> str:
    import numpy as np

    a = np.asarray(v, dtype=float)
    if a.size == 1:
        return f"{float(a.reshape(-1)[0]):.6g}"
    if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1:
        return "[" + "; ".join(" ".join(f"{x:.4g}" for x in row) for row in a) + "]"
    return "[" + ", ".join(f"{x:.4g}" for x in a.reshape(-1)) + "]"


def result_html(r: Any) -> str:
    fields = [k for k in r.components[0] if k != "covariance" or len(r.components[0][k]) == 1] if r.components else []
    head = "".join(f"<th>{html.escape(f if f != 'covariance' else 'variance')}</th>" for f in fields)
    rows = "".join(
        f"<tr><td>{k + 1}</td>" + "".join(f"<td>{_value(c[f])}</td>" for f in fields) + "</tr>"
        for k, c in enumerate(r.components)
    )
    status = "converged" if r.converged else "not converged"
    return (
        f"<p>EM: {r.iterations} iterations, {status}; log-likelihood {r.loglik[0]:.6g} &rarr; {r.loglik[-1]:.6g}"
        + (f"; BIC {r.bic:.6g}" if r.n_points else "")
        + f"</p><table><tr><th>component</th>{head}</tr>{rows}</table>"
    )


def check_html(report: Any) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(i.name)}</td><td>{'pass' if i.passed else 'skipped' if i.passed is None else 'FAIL'}"
        f"</td><td>{html.escape(i.detail)}</td></tr>"
        for i in report.items
    )
    verdict = "every check passed" if report.passed else "a check FAILED"
    return (
        f"<p><strong>Check of {html.escape(report.spec.label())}</strong> ({html.escape(report.method)}): "
        f"{verdict}</p><table><tr><th>check</th><th>result</th><th>detail</th></tr>{rows}</table>"
    )
