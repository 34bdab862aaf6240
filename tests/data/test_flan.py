"""`tllm data flan`: labelled rows become chat rows through FLAN-style templates."""

import json
import re

import pytest

from tests.conftest import run_tllm
from together_llm.data.generate.flan import Renderer, flan
from together_llm.data.generate.flan_templates import (
    ANSWER_BREAK,
    EXEMPLAR_BREAK,
    builtin_folder,
    load_template_sets,
)
from together_llm.data.store import DatasetWriter, open_dataset
from together_llm.errors import TllmError

BUILTIN_TASKS = {
    "classification",
    "sentiment",
    "extractive_qa",
    "open_qa",
    "summarization",
    "translation",
    "paraphrase",
}
LABELS = ["negative", "neutral", "positive"]


def make(home, name, kind, rows):
    with DatasetWriter(home, name, kind, source="test", format="jsonl") as out:
        for row in rows:
            out.add(row)
        return out.commit()


def reviews(home, n=30, name="reviews"):
    """Classification rows with unique texts, so each output row can be traced back."""
    rows = [
        {
            "text": f"review-{i:02d}: the soup was {['cold', 'fine', 'lovely'][i % 3]}",
            "label": LABELS[i % 3],
        }
        for i in range(n)
    ]
    make(home, name, "classification", rows)
    return rows


def chat_rows(home, name):
    return list(open_dataset(home, name).rows())


def listed_options(prompt: str) -> list[str]:
    block = prompt[prompt.index("OPTIONS:") :].split("\n\n")[0]
    return [line[2:] for line in block.splitlines()[1:]]


def test_every_builtin_task_has_ten_phrasings_that_render_without_leftover_braces():
    tasks = load_template_sets(["flan"])
    assert set(tasks) == BUILTIN_TASKS
    assert len(list(builtin_folder().glob("*.yaml"))) == len(BUILTIN_TASKS)
    for task in tasks.values():
        assert len(task.templates) >= 10, task.name
        assert len({t.input for t in task.templates}) == len(task.templates), (
            f"{task.name} repeats itself"
        )
        if task.kind == "classification":
            row, answer = {"text": "The soup was lovely.", "label": "positive"}, "positive"
        else:
            row = {
                "source": "Where is the soup?",
                "target": "In the pot.",
                "context": "The soup is in the pot.",
            }
            answer = "In the pot."
        renderer = Renderer(
            task,
            LABELS if task.options else None,
            {"target_language": "French"} if task.variables else {},
        )
        for template in task.templates:
            prompt, out = renderer.render(template, row)
            assert not re.search(r"[{}]", prompt + out), template.id
            assert out == answer, template.id
            assert (row.get("text") or row["source"]) in prompt, template.id
            if "context" in template.fields:
                assert row["context"] in prompt
            if task.options:
                assert listed_options(prompt) == LABELS, template.id


def test_zero_shot_rows_are_one_question_and_its_answer_with_the_datasets_labels(home):
    source = reviews(home)
    card = flan(home, "reviews", "zs", task="sentiment", seed=3)
    rows = chat_rows(home, "zs")
    assert card["rows"] == len(rows) == len(source) and card["shots"] == 0
    assert card["options"] == LABELS
    for row, src in zip(rows, source):
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert src["text"] in user["content"] and assistant["content"] == src["label"]
        assert listed_options(user["content"]) == LABELS
        assert "---" not in user["content"]
    assert sum(card["rows_per_template"].values()) == len(rows)
    assert sum(1 for n in card["rows_per_template"].values() if n) > 5  # phrasings vary
    assert card["flan_from"] == {
        "name": "reviews",
        "kind": "classification",
        "fingerprint": open_dataset(home, "reviews").card["fingerprint"],
    }


def test_options_given_on_the_command_line_are_listed_and_other_labels_rejected(home):
    reviews(home, n=9)
    card = flan(home, "reviews", "pn", task="sentiment", options=["positive", "negative"])
    assert card["options"] == ["positive", "negative"]
    assert card["rows"] == 6 and card["rejected_by_reason"] == {"bad label": 3}
    assert [r["line"] for r in open_dataset(home, "pn").rejected()] == [2, 5, 8]
    for row in chat_rows(home, "pn"):
        assert listed_options(row["messages"][0]["content"]) == ["positive", "negative"]


def test_few_shot_exemplars_come_from_other_rows_and_k_is_honoured(home):
    source = reviews(home)
    by_text = {r["text"]: r["label"] for r in source}
    card = flan(home, "reviews", "fs", task="sentiment", shots=3, seed=5)
    rows = chat_rows(home, "fs")
    assert card["few_shot_rows"] == len(rows) == len(source)
    for row, src in zip(rows, source):
        user, assistant = row["messages"]
        blocks = user["content"].split(EXEMPLAR_BREAK)
        assert len(blocks) == 4
        assert src["text"] in blocks[-1] and assistant["content"] == src["label"]
        shown = []
        for block in blocks[:-1]:
            question, answer = block.rsplit(ANSWER_BREAK, 1)
            text = next(t for t in by_text if t in question)
            assert answer == by_text[text]  # each exemplar carries its own row's answer
            shown.append(text)
        assert src["text"] not in shown and len(set(shown)) == 3


def test_few_shot_as_turns_and_the_zero_few_mix(home):
    source = reviews(home, n=40)
    card = flan(
        home,
        "reviews",
        "mixed",
        task="sentiment",
        shots=2,
        mix=0.5,
        shot_style="turns",
        system="Answer with one word.",
        seed=1,
    )
    rows = chat_rows(home, "mixed")
    sizes = [len(r["messages"]) for r in rows]
    assert set(sizes) == {3, 7}  # system + question + answer, or 2 exemplar turns more
    assert sizes.count(7) == card["few_shot_rows"] and sizes.count(3) == card["zero_shot_rows"]
    assert 5 < card["few_shot_rows"] < 35
    for row, src in zip(rows, source):
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
        assert src["text"] in row["messages"][-2]["content"]
        assert all(src["text"] not in m["content"] for m in row["messages"][1:-2])


def test_few_shot_needs_more_rows_than_exemplars(home):
    reviews(home, n=3)
    with pytest.raises(TllmError, match="at least 4 usable rows"):
        flan(home, "reviews", "x", task="sentiment", shots=3)


def test_same_seed_same_dataset_other_seed_other_choices(home):
    reviews(home)
    flan(home, "reviews", "a", task="classification", shots=2, mix=0.5, seed=7)
    flan(home, "reviews", "b", task="classification", shots=2, mix=0.5, seed=7)
    flan(home, "reviews", "c", task="classification", shots=2, mix=0.5, seed=8)
    data = {n: open_dataset(home, n).path().read_bytes() for n in "abc"}
    assert data["a"] == data["b"] and data["a"] != data["c"]


def test_extractive_qa_rows_without_a_passage_are_rejected_with_their_line(home):
    rows = [
        {
            "source": f"Who baked cake {i}?",
            "target": f"Ann {i}",
            "context": f"Ann {i} baked cake {i}.",
        }
        for i in range(6)
    ]
    rows[1].pop("context")
    rows[4].pop("context")
    make(home, "qa", "seq2seq", rows)
    card = flan(home, "qa", "qa-flan", task="extractive_qa")
    assert card["rows"] == 4 and card["rejected_by_reason"] == {"missing field": 2}
    rejected = list(open_dataset(home, "qa-flan").rejected())
    assert [r["line"] for r in rejected] == [2, 5]
    assert "'context' is missing" in rejected[0]["detail"]
    for row in chat_rows(home, "qa-flan"):
        user, answer = row["messages"]
        assert re.search(r"Ann (\d) baked cake \1\.", user["content"]) and answer[
            "content"
        ].startswith("Ann ")


def test_translation_takes_its_language_from_var(home):
    make(
        home,
        "pairs",
        "seq2seq",
        [
            {"source": "Good morning", "target": "Bonjour"},
            {"source": "Thank you", "target": "Merci"},
        ],
    )
    with pytest.raises(TllmError, match="--var target_language="):
        flan(home, "pairs", "fr", task="translation")
    with pytest.raises(TllmError, match="no variable tone"):
        flan(
            home,
            "pairs",
            "fr",
            task="translation",
            variables={"target_language": "French", "tone": "x"},
        )
    card = flan(home, "pairs", "fr", task="translation", variables={"target_language": "French"})
    assert card["variables"] == {"target_language": "French"}
    assert all("French" in r["messages"][0]["content"] for r in chat_rows(home, "fr"))
    with pytest.raises(TllmError, match="choose the task with --task"):
        flan(home, "pairs", "y")


def test_a_users_template_folder_works_and_adds_to_a_builtin_task(home, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "topic.yaml").write_text(
        "task: topic\nkind: classification\noptions: true\ntemplates:\n"
        '  - input: "Topic of: {text}"\n    output: "{label}"\n'
        '  - input: "{options}\\n\\nWhich topic? {text}"\n    output: "It is {label}."\n'
    )
    (folder / "more_sentiment.yaml").write_text(
        "task: sentiment\nkind: classification\noptions: true\ntemplates:\n"
        '  - input: "MOOD CHECK {text}"\n    output: "{label}"\n'
    )
    source = reviews(home)
    card = flan(home, "reviews", "mine", template_sets=[str(folder)], task="topic")
    assert set(card["rows_per_template"]) == {"topic.yaml#1", "topic.yaml#2"}
    for row, src in zip(chat_rows(home, "mine"), source):
        user, answer = (m["content"] for m in row["messages"])
        assert user.startswith(("Topic of: ", "OPTIONS:")) and listed_options(user) == LABELS
        assert answer in (src["label"], f"It is {src['label']}.")
    card = flan(home, "reviews", "more", template_sets=["flan", str(folder)], task="sentiment")
    assert (
        len(card["rows_per_template"])
        == len(load_template_sets(["flan"])["sentiment"].templates) + 1
    )
    assert "more_sentiment.yaml#1" in card["rows_per_template"]


@pytest.mark.parametrize(
    "body, problem",
    [
        (
            'task: t\nkind: classification\ntemplates:\n  - input: "{text} {colour}"\n    output: "{label}"\n',
            r"template 1 input: unknown placeholder\(s\) \{colour\}",
        ),
        (
            'task: t\nkind: classification\ntemplates:\n  - input: "{text}"\n',
            r"template 1 has no 'output' \(answer pattern\)",
        ),
        (
            'task: t\nkind: seq2seq\ntemplates:\n  - input: "{source}"\n    output: "fixed"\n',
            r"template 1 output must show the answer",
        ),
        (
            'task: t\nkind: classification\ntemplates:\n  - input: "{text"\n    output: "{label}"\n',
            r"literal braces",
        ),
        (
            "task: t\nkind: classification\ntemplates:\n  - input: {text}\n",
            r"template 1 input starts with '\{': put the pattern in quotes",
        ),
        (
            'task: t\nkind: classification\ntemplates:\n  - input: "x\n  output: y\n',
            r"not valid YAML at line",
        ),
        ("task: t\nkind: table\ntemplates: []\n", r"'kind' must be one of"),
        ("task: t\nkind: seq2seq\ntemplate:\n  - input: x\n", r"unknown key\(s\) 'template'"),
    ],
)
def test_a_broken_template_file_gets_an_error_naming_the_file_and_problem(tmp_path, body, problem):
    path = tmp_path / "broken.yaml"
    path.write_text(body)
    with pytest.raises(TllmError, match=problem) as error:
        load_template_sets([str(tmp_path)])
    assert str(path) in str(error.value)


def test_the_command_writes_the_dataset_and_explains_bad_template_sets(home, tmp_path):
    reviews(home, n=6)
    result = run_tllm(
        "data",
        "flan",
        "--from",
        "reviews",
        "--task",
        "sentiment",
        "--shots",
        "1",
        "--name",
        "cli",
        "--json",
        home=home,
    )
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["rows"] == 6 and card["task"] == "sentiment" and card["few_shot_rows"] == 6
    (tmp_path / "bad.yaml").write_text(
        'task: t\nkind: classification\ntemplates:\n  - input: "{txt}"\n    output: "{label}"\n'
    )
    result = run_tllm(
        "data", "flan", "--from", "reviews", "--template-set", tmp_path, "--name", "bad", home=home
    )
    assert result.returncode != 0 and "bad.yaml" in result.stderr and "{txt}" in result.stderr
    assert not (home.path / "datasets" / "bad").exists()


def test_nothing_is_written_when_no_row_can_be_rendered(home):
    make(home, "qa", "seq2seq", [{"source": "Who?", "target": "Ann"}])
    with pytest.raises(TllmError, match="line 1: missing field: 'context' is missing"):
        flan(home, "qa", "qa-flan", task="extractive_qa")
    assert not (home.path / "datasets" / "qa-flan").exists()
