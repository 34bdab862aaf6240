"""`tllm eval`'s run: the adapter and its base measured side by side on the same rows, the
report files, refusals before any model loads, multiple choice as choice.py computes it, and
an injected judge's grades and pairwise verdicts.

The home (conftest.eval_home) holds the tiny random LLaMA as `tiny` and `noisy`, a LoRA
adapter with random (non-zero) weights made with PEFT directly, so it visibly changes the
model."""

from __future__ import annotations

import json

import pytest

from tests.evaluate.conftest import ANIMALS
from together_llm.data.kinds import RowError, validate
from together_llm.errors import RefusedError, TllmError
from together_llm.evaluate.run import EvalSettings, run_eval

PNG = b"\x89PNG\r\n\x1a\n"


def runs(home) -> list:
    return sorted((home.path / "runs").iterdir())


def test_adapter_and_base_perplexity_side_by_side_in_every_report_file(eval_home, tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from together_llm.evaluate.perplexity import perplexity

    seen = []
    result = run_eval(
        eval_home,
        EvalSettings(data="notes", adapter="noisy", report=True),
        progress=lambda done, total: seen.append((done, total)),
    )
    subject, base = result["results"]["subject"], result["results"]["base"]
    assert result["metrics"] == ["ppl"] and result["rows"] == len(ANIMALS)
    assert subject["perplexity"] != pytest.approx(
        base["perplexity"], rel=1e-3
    )  # the adapter matters
    # The base column is the base model's own perplexity on these rows.
    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(tiny_dir).eval(),
        AutoTokenizer.from_pretrained(tiny_dir),
    )
    rows = [{"text": f"The {a} says {s}. " * 3} for a, s in ANIMALS]
    assert base["perplexity"] == pytest.approx(
        perplexity(model, tokenizer, rows, "text").perplexity, rel=1e-4
    )
    assert seen[-1][0] == seen[-1][1] > 0  # the progress reached its total

    folder = eval_home.path / "runs" / result["run_id"]
    assert json.loads((folder / "metrics.json").read_text())["results"] == result["results"]
    assert (folder / "config.yaml").is_file()
    pngs = sorted((folder / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == PNG for p in pngs)
    markdown = (folder / "report.md").read_text()
    assert "| metric | base | subject | change |" in markdown
    assert f"| perplexity | {base['perplexity']:,.3f} | {subject['perplexity']:,.3f} |" in markdown
    page = (folder / "report.html").read_text()
    assert f"{base['perplexity']:,.3f}" in page and f"{subject['perplexity']:,.3f}" in page
    assert 'src="plots/accuracy.png"' in page

    alone = run_eval(eval_home, EvalSettings(data="notes", adapter="noisy"))  # no --report
    assert alone["base"] is None and alone["results"]["base"] is None
    assert alone["results"]["subject"]["perplexity"] == pytest.approx(
        subject["perplexity"], rel=1e-5
    )
    assert not (eval_home.path / "runs" / alone["run_id"] / "report.md").exists()


def test_refusals_come_before_any_model_loads(eval_home, monkeypatch):
    import together_llm.evaluate.run as select

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded for a refused evaluation")

    monkeypatch.setattr(select, "open_engine", no_loading)
    with pytest.raises(
        RefusedError,
        match="metric rouge applies to chat and seq2seq datasets; dataset 'notes' is text",
    ):
        run_eval(eval_home, EvalSettings(data="notes", metrics=["ppl", "rouge"]))
    with pytest.raises(RefusedError, match="metric ppl applies to text and chat.*'quiz' is choice"):
        run_eval(eval_home, EvalSettings(data="quiz", metrics="ppl"))
    with pytest.raises(TllmError, match="unknown metric bleurt: choose from ppl, rouge"):
        run_eval(eval_home, EvalSettings(data="sounds", metrics="rouge,bleurt"))
    with pytest.raises(TllmError, match="unknown judge 'oracle'"):
        run_eval(eval_home, EvalSettings(data="sounds", metrics="judge", judge="oracle"))
    with pytest.raises(TllmError, match="is not a home"):
        run_eval(
            eval_home,
            EvalSettings(
                data="sounds", metrics="judge", judge=f"home:{eval_home.path.parent / 'nowhere'}"
            ),
        )
    with pytest.raises(TllmError, match="unknown adapter 'ghost'"):
        run_eval(eval_home, EvalSettings(data="notes", adapter="ghost"))
    with pytest.raises(TllmError, match="not both"):
        run_eval(eval_home, EvalSettings(data="notes", adapter="noisy", model="tiny"))
    assert runs(eval_home) == []  # nothing was started


def test_multiple_choice_matches_choice_py_and_robustness_is_a_worst_case(eval_home, tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from together_llm.evaluate.choice import multiple_choice

    result = run_eval(eval_home, EvalSettings(data="quiz", model="tiny", metrics="mc", report=True))
    scores = result["results"]["subject"]
    assert result["base"] is None  # the home's own model: nothing to set beside it
    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(tiny_dir).eval(),
        AutoTokenizer.from_pretrained(tiny_dir),
    )
    rows = list(eval_home.path.joinpath("datasets", "quiz", "data.jsonl").read_text().splitlines())
    direct = multiple_choice(model, tokenizer, [json.loads(line) for line in rows])
    assert 0 <= scores["acc"] <= 1
    assert scores["acc"] == pytest.approx(direct.acc)
    assert scores["acc_norm"] == pytest.approx(direct.acc_norm)
    assert scores["ece"] == pytest.approx(direct.ece)
    # Per item, the worse of the original and the perturbed question: never above acc.
    assert 0 <= scores["robust_acc"] <= scores["acc"]
    assert "worst case" in result["robustness"]
    report = (eval_home.path / "runs" / result["run_id"] / "report.md").read_text()
    assert "## Calibration" in report and "## Robustness" in report


class LengthJudge:
    """Grades an answer 1 + its length in characters (at most 10) and prefers the longer of
    two answers in either order; records what it was shown."""

    name = "length-judge"

    def __init__(self):
        self.seen = []

    def complete(self, messages):
        text = messages[-1]["content"]
        self.seen.append(text)
        if "[Assistant A's answer]" in text:
            first, second = text.split("[Assistant A's answer]\n")[1].split(
                "\n\n[Assistant B's answer]\n"
            )
            return (
                "[[A]]"
                if len(first) > len(second)
                else "[[B]]"
                if len(second) > len(first)
                else "[[C]]"
            )
        answer = text.split("[Assistant's answer]\n")[1]
        return f"Rating: [[{min(10, 1 + len(answer))}]]"


def test_an_injected_judge_grades_both_sides_and_compares_them_in_both_orders(eval_home):
    judge, seen = LengthJudge(), []
    result = run_eval(
        eval_home,
        EvalSettings(data="sounds", adapter="noisy", metrics="em,judge", max_tokens=6),
        judge=judge,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (len(seen), len(seen))  # one unit at a time, ending at the total
    answers = [
        json.loads(line)
        for line in (eval_home.path / "runs" / result["run_id"] / "answers.jsonl")
        .read_text()
        .splitlines()
    ]
    assert len(answers) == len(ANIMALS)
    for role in ("subject", "base"):
        expected = sum(min(10, 1 + len(a[role])) for a in answers) / len(answers)
        assert result["results"][role]["judge_score"] == pytest.approx(expected)
    wins = sum(len(a["subject"]) > len(a["base"]) for a in answers)
    losses = sum(len(a["subject"]) < len(a["base"]) for a in answers)
    pairwise = result["judge"]["pairwise"]
    assert (pairwise["wins"], pairwise["losses"], pairwise["ties"]) == (
        wins,
        losses,
        len(answers) - wins - losses,
    )
    assert pairwise["consistent"] == len(answers)  # this judge has no position bias
    assert result["judge"]["name"] == "length-judge"
    assert result["judge"]["stats"] == {"calls": 4 * len(answers), "unparseable": 0, "too_long": 0}
    # Grading shows the reference answer (the last assistant turn) to the judge.
    assert any("The cat says meow." in text and "[Reference answer" in text for text in judge.seen)


def test_choice_rows_are_validated():
    assert validate("choice", {"question": "2+2?", "choices": ["4", "5"], "answer": 0, "x": 1}) == {
        "question": "2+2?",
        "choices": ["4", "5"],
        "answer": 0,
    }
    assert (
        validate("choice", {"question": "2+2?", "choices": ["4", "5"], "answer": "5"})["answer"]
        == "5"
    )
    bad = [
        ({"question": "q", "choices": ["a"], "answer": 0}, "wrong type"),
        ({"question": "q", "choices": ["a", " "], "answer": 0}, "empty content"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, "bad label"),
        ({"question": "q", "choices": ["a", "b"], "answer": "c"}, "bad label"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "bad label"),
        ({"question": "q", "choices": ["a", "b"]}, "missing field"),
        ({"choices": ["a", "b"], "answer": 0}, "missing field"),
    ]
    for row, reason in bad:
        with pytest.raises(RowError) as caught:
            validate("choice", row)
        assert caught.value.reason == reason, row


def test_the_html_report_escapes_what_users_named(tmp_path):
    from together_llm.evaluate.report import write_report

    metrics = {
        "run_id": "r1",
        "data": "qa",
        "kind": "chat",
        "rows": 2,
        "split": None,
        "subject": {"label": "mine", "model": "tiny", "adapters": ["mine"]},
        "base": {"label": "tiny", "model": "tiny", "adapters": []},
        "results": {
            "subject": {"exact_match": 50.0, "judge_score": 6.0},
            "base": {"exact_match": 0.0, "judge_score": 4.0},
        },
        "judge": {
            "name": "home:/tmp/<script>alert(1)</script>",
            "pairwise": {"wins": 1, "ties": 1, "losses": 0, "consistent": 1, "pairs": 2},
            "stats": {"calls": 8, "unparseable": 0, "too_long": 0},
        },
        "robustness": None,
    }
    paths = write_report(tmp_path, metrics)
    page = paths["html"].read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "+50.00 (better)" in page and "won 1, tied 1 and lost 0 of 2 pairs" in page
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["accuracy.png", "judge.png"]
