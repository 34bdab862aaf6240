"""The side-by-side report of an improve round: as text for the terminal, and as
`report.json` and `report.html` in `learn/runs/<run>/` (the evaluation report's style)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..evaluate.report import STYLE

SET_LABELS = {
    "new": "new memories (held-out questions) and corrections",
    "earlier": "earlier memories and corrections (regression set)",
    "general": "general probes",
    "preferences": "choices and ratings trained on (the model sides with you)",
    "datasets": "datasets marked for teaching (held-out answers' likelihood)",
    "earlier datasets": "datasets taught before (held-out answers' likelihood)",
}


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def score_rows(outcome: dict) -> list[tuple[str, str, str]]:
    """(set, current, candidate) for every set that was scored."""
    return [
        (SET_LABELS.get(name, name), _pct(pair.get("current")), _pct(pair.get("candidate")))
        for name, pair in outcome.get("scores", {}).items()
        if pair.get("current") is not None or pair.get("candidate") is not None
    ]


def current_label(outcome: dict) -> str:
    current = outcome.get("current")
    return f"{outcome['adapter']}@{current}" if current else "base"


def text_report(outcome: dict) -> str:
    lines = []
    if outcome.get("scores"):
        head = ("held-out set", current_label(outcome), "candidate")
        rows = [head, *score_rows(outcome)]
        width = max(len(r[0]) for r in rows)
        lines += [f"{a:<{width}}  {b:>10}  {c:>10}" for a, b, c in rows]
    verdict = (
        f"adopted as {outcome['adapter']}@{outcome['version']}"
        if outcome.get("adopted")
        else "not adopted"
        if outcome.get("scores")
        else "nothing trained"
    )
    lines.append(f"{verdict}: {outcome.get('reason', '')}")
    return "\n".join(lines)


def write_report(folder: Path, outcome: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(
        json.dumps(outcome, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (folder / "report.html").write_text(html_report(outcome), encoding="utf-8")


def html_report(outcome: dict) -> str:
    e = html.escape
    title = (
        f"Improving {outcome['adapter']}: {'adopted' if outcome.get('adopted') else 'not adopted'}"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(outcome.get('reason', ''))}</p>",
        "<ul>"
        + "".join(
            f"<li><b>{e(k)}</b>: {e(str(v))}</li>"
            for k, v in (
                ("from", current_label(outcome)),
                ("new memories", outcome.get("new")),
                (
                    "new corrections (lines of feedback/corrections.jsonl)",
                    outcome.get("corrections") or "none",
                ),
                ("datasets marked for teaching, new or changed", outcome.get("datasets") or "none"),
                ("forgotten", outcome.get("forgotten") or "none"),
                ("rows", outcome.get("rows")),
                ("stages", ", ".join(outcome.get("stages") or []) or "none"),
                ("waiting for more", outcome.get("waiting") or "nothing"),
                ("training seconds", outcome.get("train_seconds")),
            )
        )
        + "</ul>",
        "<table><tr><th>held-out set</th>"
        f"<th>{e(current_label(outcome))}</th><th>candidate</th></tr>",
    ]
    parts += [
        f'<tr><td>{e(a)}</td><td class="n">{e(b)}</td><td class="n">{e(c)}</td></tr>'
        for a, b, c in score_rows(outcome)
    ]
    parts.append("</table>")
    for name, answers in outcome.get("answers", {}).items():
        if not answers:
            continue
        parts.append(f"<h2>{e(SET_LABELS.get(name, name))}</h2><table>")
        parts.append(
            f"<tr><th>question</th><th>{e(current_label(outcome))}</th><th>candidate</th></tr>"
        )
        for row in answers:
            asked = row["question"] + (" (a correction)" if "correction" in row else "")
            cells = [f"<td>{e(asked)}</td>"]
            for side in ("current", "candidate"):
                said = row.get(side) or {}
                css = "better" if said.get("right") else "worse"
                cells.append(f'<td class="{css}">{e(said.get("answer", ""))}</td>')
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
