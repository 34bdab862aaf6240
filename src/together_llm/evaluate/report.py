"""The evaluation report, in the spirit of HELM: the subject beside its base model, metric by
metric, grouped as accuracy, calibration, robustness, efficiency and the judge's view, in
`report.md` and `report.html` with one PNG chart per group under `plots/`.

It reads only metrics.json's content (run.py), so a report can be drawn again from a saved
run. Every text that comes from the user (names, paths) is escaped in the HTML.
"""

from __future__ import annotations

import html
from pathlib import Path

# metric key -> (group, label, whether higher is better, decimals)
METRIC_INFO = {
    "perplexity": ("accuracy", "perplexity", False, 3),
    "acc": ("accuracy", "multiple-choice accuracy (acc)", True, 3),
    "acc_norm": ("accuracy", "length-normalized accuracy (acc_norm)", True, 3),
    "rouge1": ("accuracy", "ROUGE-1", True, 2),
    "rouge2": ("accuracy", "ROUGE-2", True, 2),
    "rougeL": ("accuracy", "ROUGE-L", True, 2),
    "bleu": ("accuracy", "BLEU", True, 2),
    "chrf": ("accuracy", "chrF", True, 2),
    "exact_match": ("accuracy", "exact match", True, 2),
    "token_f1": ("accuracy", "token F1", True, 2),
    "ece": ("calibration", "expected calibration error (ECE)", False, 3),
    "robust_acc": ("robustness", "acc, worst case", True, 3),
    "robust_acc_norm": ("robustness", "acc_norm, worst case", True, 3),
    "robust_rougeL": ("robustness", "ROUGE-L, worst case", True, 2),
    "robust_exact_match": ("robustness", "exact match, worst case", True, 2),
    "robust_token_f1": ("robustness", "token F1, worst case", True, 2),
    "tokens_per_s": ("efficiency", "generated tokens/s", True, 1),
    "scored_tokens_per_s": ("efficiency", "scored tokens/s (perplexity)", True, 1),
    "judge_score": ("judge", "judge's grade (1-10)", True, 2),
}
GROUPS = {
    "accuracy": "Accuracy",
    "calibration": "Calibration",
    "robustness": "Robustness",
    "efficiency": "Efficiency",
    "judge": "LLM judge",
}
NOTES = {
    "accuracy": "Text metrics are 0-100 (sacrebleu, rouge-score, SQuAD); acc and acc_norm are "
    "fractions, as lm-evaluation-harness reports them.",
    "calibration": "How far the confidence of the chosen option is from how often it is right "
    "(10 equal-width bins); 0 is perfectly calibrated.",
    "efficiency": "Greedy generation on the same engine for both columns, prompt processing "
    "included; on a shared machine compare the ratio, not the figures.",
    "judge": "Mean of the readable 1-10 grades, the reference answer shown to the judge.",
}


def rows_of(metrics: dict) -> dict[str, list[tuple[str, str, float | None, float | None]]]:
    """Per group, (key, label, base value, subject value) of every metric measured."""
    results = metrics["results"]
    subject, base = results["subject"], results.get("base") or {}
    groups: dict[str, list] = {group: [] for group in GROUPS}
    for key, (group, label, _, _) in METRIC_INFO.items():
        if key in subject or key in base:
            groups[group].append((key, label, base.get(key), subject.get(key)))
    return {group: rows for group, rows in groups.items() if rows}


def format_number(value, decimals: int) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def change_text(key: str, base, subject) -> str:
    """The subject's change against the base, and whether it is better or worse."""
    if base is None or subject is None:
        return "-"
    _, _, higher, decimals = METRIC_INFO[key]
    delta = subject - base
    if round(delta, decimals) == 0:
        return "same"
    better = (delta > 0) == higher
    return f"{delta:+,.{decimals}f} ({'better' if better else 'worse'})"


def _facts(metrics: dict) -> list[tuple[str, str]]:
    def side(entry: dict | None) -> str:
        if entry is None:
            return "none (no other model to compare with)"
        adapters = entry.get("adapters") or []
        return entry["model"] + (f" + adapter {', '.join(adapters)}" if adapters else "")

    facts = [
        ("run", metrics["run_id"]),
        (
            "data",
            f"{metrics['data']} ({metrics['kind']}, {metrics['rows']} rows"
            + (f", {metrics['split']} split" if metrics.get("split") else "")
            + ")",
        ),
        ("subject", side(metrics["subject"])),
        ("base", side(metrics.get("base"))),
    ]
    if metrics.get("judge"):
        stats = metrics["judge"]["stats"]
        unread = (
            (
                f" ({stats['unparseable']} of {stats['calls']} replies had no readable grade or "
                f"verdict, {stats.get('too_long', 0)} of them for questions too long for its "
                "context)"
            )
            if stats["unparseable"]
            else ""
        )
        facts.append(("judge", f"{metrics['judge']['name']}{unread}"))
    for role, scores in metrics["results"].items():
        if scores and scores.get("prompts_too_long"):
            facts.append(
                (
                    f"{role} context",
                    f"{scores['prompts_too_long']} prompts did not fit "
                    "the model's context and got empty answers",
                )
            )
    if metrics.get("robustness"):
        facts.append(("robustness", metrics["robustness"]))
    return facts


def _pairwise_text(metrics: dict) -> str | None:
    pairwise = (metrics.get("judge") or {}).get("pairwise")
    if not pairwise:
        return None
    return (
        f"Asked which answer is better, in both orders: the subject won {pairwise['wins']}, "
        f"tied {pairwise['ties']} and lost {pairwise['losses']} of {pairwise['pairs']} pairs "
        f"({pairwise['consistent']} verdicts were the same in both orders; the others count "
        "as ties)."
    )


# ----------------------------------------------------------------------------- Markdown


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(metrics: dict, plots: dict[str, str]) -> str:
    compared = metrics.get("base") is not None
    lines = [
        f"# Evaluation of {_cell(metrics['subject']['label'])} on {_cell(metrics['data'])}",
        "",
    ]
    lines += [f"- **{name}**: {_cell(value)}" for name, value in _facts(metrics)] + [""]
    for group, rows in rows_of(metrics).items():
        lines += [f"## {GROUPS[group]}", ""]
        if group in NOTES:
            lines += [NOTES[group], ""]
        if compared:
            lines += ["| metric | base | subject | change |", "| --- | ---: | ---: | --- |"]
        else:
            lines += ["| metric | subject |", "| --- | ---: |"]
        for key, label, base, subject in rows:
            decimals = METRIC_INFO[key][3]
            cells = (
                [label]
                + ([format_number(base, decimals)] if compared else [])
                + [format_number(subject, decimals)]
            )
            if compared:
                cells.append(change_text(key, base, subject))
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
        if group == "judge" and (pairwise := _pairwise_text(metrics)):
            lines += [pairwise, ""]
        if group in plots:
            lines += [f"![{GROUPS[group]}]({plots[group]})", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------- HTML

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}.better{color:#17692e}"
    ".worse{color:#a3261b}img{max-width:100%}"
)


def html_report(metrics: dict, plots: dict[str, str]) -> str:
    e = html.escape
    compared = metrics.get("base") is not None
    title = f"Evaluation of {metrics['subject']['label']} on {metrics['data']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<ul>"
        + "".join(f"<li><b>{e(n)}</b>: {e(str(v))}</li>" for n, v in _facts(metrics))
        + "</ul>",
    ]
    for group, rows in rows_of(metrics).items():
        parts.append(f"<h2>{e(GROUPS[group])}</h2>")
        if group in NOTES:
            parts.append(f"<p>{e(NOTES[group])}</p>")
        head = (
            ["metric"]
            + (["base"] if compared else [])
            + ["subject"]
            + (["change"] if compared else [])
        )
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        for key, label, base, subject in rows:
            decimals = METRIC_INFO[key][3]
            cells = [f"<td>{e(label)}</td>"]
            if compared:
                cells.append(f'<td class="n">{e(format_number(base, decimals))}</td>')
            cells.append(f'<td class="n">{e(format_number(subject, decimals))}</td>')
            if compared:
                change = change_text(key, base, subject)
                css = "better" if "better" in change else "worse" if "worse" in change else ""
                cells.append(f'<td class="{css}">{e(change)}</td>')
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        if group == "judge" and (pairwise := _pairwise_text(metrics)):
            parts.append(f"<p>{e(pairwise)}</p>")
        if group in plots:
            parts.append(
                f'<img src="{e(plots[group], quote=True)}" alt="{e(GROUPS[group], quote=True)}">'
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------- charts


def plot_group(group: str, rows: list, compared: bool, labels: tuple[str, str], path: Path) -> Path:
    """One panel per metric of the group, a bar per model (base, then subject)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    columns = min(4, len(rows))
    lines = -(-len(rows) // columns)
    figure, axes = plt.subplots(
        lines, columns, figsize=(2.8 * columns + 0.6, 3.2 * lines + 0.4), squeeze=False
    )
    for axis in axes.flat[len(rows) :]:
        axis.set_visible(False)
    for axis, (key, label, base, subject) in zip(axes.flat, rows):
        names = ([labels[0]] if compared else []) + [labels[1]]
        values = ([base] if compared else []) + [subject]
        colors = (["#9aa5b1"] if compared else []) + ["#2f6db5"]
        axis.bar(range(len(values)), [v or 0 for v in values], color=colors)
        for i, value in enumerate(values):
            axis.annotate(
                format_number(value, METRIC_INFO[key][3]),
                (i, value or 0),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axis.set_xticks(
            range(len(names)), [n if len(n) <= 14 else n[:13] + "…" for n in names], fontsize=8
        )
        better = "higher" if METRIC_INFO[key][2] else "lower"
        axis.set_title(f"{label}\n({better} is better)", fontsize=8)
        top = max([v for v in values if v is not None] or [0])
        axis.set_ylim(
            0, top * 1.2 if top > 0 else 1
        )  # bars start at 0; all-zero panels stay readable
    figure.suptitle(GROUPS[group])
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(run_dir: Path, metrics: dict) -> dict[str, Path]:
    """report.md, report.html and plots/<group>.png in `run_dir`; returns their paths."""
    compared = metrics.get("base") is not None
    labels = ((metrics["base"] or {}).get("label", "base"), metrics["subject"]["label"])
    plots = {}
    for group, rows in rows_of(metrics).items():
        plot_group(group, rows, compared, labels, run_dir / "plots" / f"{group}.png")
        plots[group] = f"plots/{group}.png"
    (run_dir / "report.md").write_text(markdown(metrics, plots), encoding="utf-8")
    (run_dir / "report.html").write_text(html_report(metrics, plots), encoding="utf-8")
    return {
        "markdown": run_dir / "report.md",
        "html": run_dir / "report.html",
        "plots": run_dir / "plots",
    }
