"""Self-Instruct: the bundled seed tasks, the paper's filters, the prompts' parsers, and end
to end with the bundled model as the teacher (a small dataset, and resuming after Ctrl-C)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from together_llm.data import self_instruct as si
from together_llm.data.similarity import InstructionPool, rouge_l
from together_llm.data.store import open_dataset
from together_llm.errors import TllmError
from together_llm.home import Home

from tests.conftest import ROOT, run_tllm


def _pool(*texts):
    return InstructionPool(texts), {si.normalize(t) for t in texts}


# --- seeds -------------------------------------------------------------------------------
def test_bundled_seeds_are_many_diverse_and_usable():
    seeds = si.load_seeds()
    assert len(seeds) >= 25
    kinds = [t["is_classification"] for t in seeds]
    assert sum(kinds) >= 8 and kinds.count(False) >= 12
    assert all(t["instances"] for t in seeds)
    # Every seed would pass the filters against the others: no blocked word, sane length,
    # and no two so alike that the ROUGE-L rule would have dropped one of them.
    for i, task in enumerate(seeds):
        others = [t["instruction"] for j, t in enumerate(seeds) if j != i]
        assert si.instruction_problem(task["instruction"], *_pool(*others)) is None, task
    for a, b in itertools.combinations(seeds, 2):
        assert rouge_l(a["instruction"], b["instruction"]) < 0.7


def test_seed_file_errors_name_the_line(tmp_path):
    good = orjson.dumps({"instruction": "Name a colour.", "instances": [{"input": "", "output": "Red"}]})
    cases = {
        b"{not json": "not valid JSON",
        b'{"instances": []}': "non-empty 'instruction'",
        b'{"instruction": "Say hi.", "is_classification": "no"}': "'is_classification'",
        b'{"instruction": "Say hi.", "instances": [{"input": "x", "output": ""}]}': "'instances'",
    }
    for bad, message in cases.items():
        path = tmp_path / "seeds.jsonl"
        path.write_bytes(good + b"\n\n" + good + b"\n" + bad + b"\n")
        with pytest.raises(TllmError, match=f"seeds.jsonl:4: .*{message}"):
            si.load_seeds(path)
    path.write_bytes(good + b"\n")
    with pytest.raises(TllmError, match="at least 2"):
        si.load_seeds(path)


def test_cli_rejects_a_bad_seed_file_before_loading_a_model(home, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"instruction": "Say hi."}\n["a list"]\n')
    result = run_tllm("data", "self-instruct", "--seeds", path, "--count", "2", "--name", "x", home=home)
    assert result.returncode == 1
    assert "mine.jsonl:2:" in result.stderr and "Traceback" not in result.stderr


# --- filters -----------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "Draw a cat sitting on a fence.", "Describe the image below in detail.",
    "Summarize the plot of the film.", "Open the files and count their lines.",
    "Tell me how to go to the station.", "Look at the GRAPHS and explain the trend.",
])
def test_keyword_filter_drops_what_a_text_model_cannot_serve(text):
    assert si.instruction_problem(text, *_pool()) == "keyword"


@pytest.mark.parametrize("text", [
    "Explain the drawbacks of nuclear power.", "Describe the job of a mapmaker.",
    "Write a profile of a famous scientist.", "Suggest a plotline twist for a mystery novel.",
])
def test_keyword_filter_matches_whole_words_only(text):
    assert si.instruction_problem(text, *_pool()) is None


def test_length_junk_and_duplicate_filters():
    pool = _pool("Write a haiku about rain.")
    assert si.instruction_problem("Write haiku.", *pool) == "too short"
    assert si.instruction_problem("Name three birds.", *pool) is None  # 3 words is enough
    assert si.instruction_problem("Write " + "very " * 150 + "long.", *pool) == "too long"
    assert si.instruction_problem("- Write a list of birds.", *pool) == "junk"
    assert si.instruction_problem("¿Cuál es la capital de Francia?", *pool) == "junk"
    assert si.instruction_problem("write a  HAIKU about rain.", *pool) == "duplicate"


def test_rouge_rule_drops_near_copies_of_kept_instructions():
    pool = _pool("Write a short poem about the sea.")
    # 6 of 7 tokens shared: ROUGE-L 12/14 = 0.86 >= 0.7
    assert si.instruction_problem("Write a short poem about the ocean.", *pool) == "similar"
    assert si.instruction_problem("Write a recipe for vegetable soup.", *pool) is None


def test_instance_filters():
    shown = frozenset({si.normalize("Tom has 12 - 5 + 8 = 15 apples.")})
    kept = [{"input": "Paris", "output": "France"}]
    check = lambda given, output: si.instance_problem({"input": given, "output": output}, kept, shown)  # noqa: E731
    assert check("Rome", "  ") == "empty output"
    assert check("Hello there", "hello  there") == "output is input"
    assert check("", "Tom has 12 - 5 + 8 = 15 apples.") == "copied example"
    assert check("paris", "Francia") == "duplicate instance"
    assert check("word " * 300, "word " * 101) == "instance too long"
    assert check("Berlin", "Germany") is None


# --- parsing what the teacher writes -----------------------------------------------------
def test_parse_instructions_from_a_continued_list():
    text = " Write a limerick.\nTask 10: Name two rivers in Asia.\nTask 11 : List the"
    assert si.parse_instructions(text, truncated=True) == ["Write a limerick.", "Name two rivers in Asia."]
    assert si.parse_instructions(text, truncated=False)[-1] == "List the"
    # a blank line ends the list, so what follows is ignored and nothing was cut
    assert si.parse_instructions("Name a fruit.\n\nSome chatter", truncated=True) == ["Name a fruit."]
    assert si.instruction_prompt(["A b c.", "D e f."]).endswith("Task 1: A b c.\nTask 2: D e f.\nTask 3:")


def test_parse_instances_input_first_and_output_first():
    assert si.parse_input_first("Input: 3 and 4\nOutput: 7") == [{"input": "3 and 4", "output": "7"}]
    assert si.parse_input_first("Input: None\nOutput: Hi!") == [{"input": "", "output": "Hi!"}]
    assert si.parse_input_first("Output: A tip.") == [{"input": "", "output": "A tip."}]
    assert si.parse_input_first("Just an answer.") == [{"input": "", "output": "Just an answer."}]
    # a second "Input:" line starts a second example; a stray second output is cut off
    assert si.parse_input_first("Input: 2+2\nOutput: 4\nInput: 3+3\nOutput: 6\nOutput: 7") == [
        {"input": "2+2", "output": "4"}, {"input": "3+3", "output": "6"}]
    text = " Positive\nInput: I loved it.\nClass label: Negative.\nInput: Dull and long."
    assert si.parse_output_first(text) == [{"input": "I loved it.", "output": "Positive"},
                                           {"input": "Dull and long.", "output": "Negative"}]
    assert si.parse_is_classification(" label") and not si.parse_is_classification(" text")
    row = si.chat_row({"instruction": "Add the numbers."}, {"input": "3 and 4", "output": "7"})
    assert row["messages"] == [{"role": "user", "content": "Add the numbers.\n\n3 and 4"},
                               {"role": "assistant", "content": "7"}]


# --- the work folder ---------------------------------------------------------------------
def test_work_folder_recovers_from_an_interruption_at_any_point(tmp_path):
    settings = {"teacher": "default", "seed": 0}
    work = si.WorkFolder(tmp_path / ".self-instruct-x", settings)
    task = {"instruction": "Name two oceans.", "is_classification": False,
            "instances": [{"input": "", "output": "Atlantic and Pacific."}]}
    work.count("instructions", ["similar"])
    work.state["position"] = 1
    work.save()
    # killed after the task line was flushed but before state.json was updated, in the
    # middle of writing the next line
    work.keep(task, ["empty output"])
    with open(work.tasks_path, "ab") as f:
        f.write(b'{"step": 0, "position": 2, "instr')
    resumed = si.WorkFolder(tmp_path / ".self-instruct-x", settings)
    assert [t["instruction"] for t in resumed.tasks] == ["Name two oceans."]
    assert resumed.tasks_path.read_bytes().count(b"\n") == 1  # the half line is gone
    assert (resumed.state["step"], resumed.state["position"]) == (0, 2)  # the kept one is done
    assert resumed.state["dropped_instructions"] == {"similar": 1}
    assert resumed.state["dropped_instances"] == {"empty output": 1}
    with pytest.raises(TllmError, match="--seed was 0, now 1"):
        si.WorkFolder(tmp_path / ".self-instruct-x", {**settings, "seed": 1})


# --- end to end with the bundled model ---------------------------------------------------
COUNT = 3


def _tasks(folder):
    return [orjson.loads(line) for line in (folder / "tasks.jsonl").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A dataset grown in one uninterrupted run."""
    home = Home.open(tmp_path_factory.mktemp("self-instruct") / "home")
    result = run_tllm("data", "self-instruct", "--count", COUNT, "--seed", 3, "--name", "grown",
                      "--json", home=home)
    assert result.returncode == 0, result.stderr
    return home, orjson.loads(result.stdout)


@pytest.mark.slow
def test_self_instruct_end_to_end(grown):
    home, card = grown
    dataset = open_dataset(home, "grown")
    details = dataset.card["self_instruct"]
    assert card == dataset.card and dataset.kind == "chat"
    assert details["tasks"] == COUNT and details["teacher"] == "default" and details["seed"] == 3
    assert details["generated"] == COUNT + sum(details["dropped_instructions"].values())
    tasks = _tasks(dataset.folder)
    assert len({t["instruction"] for t in tasks}) == COUNT
    rows = list(dataset.rows())
    assert len(rows) == len(tasks) == dataset.card["rows"] >= COUNT
    seeds = [t["instruction"] for t in si.load_seeds()]
    kept: list[str] = []
    for task, row in zip(tasks, rows):
        # each row is the task's instruction (and input) answered by its output
        user, assistant = row["messages"]
        assert user["content"].startswith(task["instruction"]) and task["input"] in user["content"]
        assert assistant["content"] == task["output"] and task["output"].strip()
        if task["instruction"] in kept:
            continue
        # the paper's rule: ROUGE-L < 0.7 against every seed and every instruction kept before
        assert max(rouge_l(task["instruction"], other) for other in seeds + kept) < 0.7
        assert si.instruction_problem(task["instruction"], *_pool(*seeds, *kept)) is None
        kept.append(task["instruction"])
    assert not (home.path / "datasets" / ".self-instruct-grown").exists()


@pytest.mark.slow
def test_interrupted_run_resumes_without_losing_or_repeating(tmp_path, grown):
    home = Home.open(tmp_path / "home")
    work = home.path / "datasets" / ".self-instruct-grown"
    env = {**os.environ, "TLLM_HOME": str(home.path)}
    env.pop("TLLM_DEBUG", None)
    args = [sys.executable, "-m", "together_llm.cli.main", "data", "self-instruct",
            "--count", str(COUNT), "--seed", "3", "--name", "grown"]
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if (work / "tasks.jsonl").is_file() and (work / "tasks.jsonl").read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err  # interrupted before the run could finish
    before = _tasks(work)
    assert 1 <= len(before) < COUNT

    result = run_tllm(*args[3:], home=home)
    assert result.returncode == 0, result.stderr
    dataset = open_dataset(home, "grown")
    after = _tasks(dataset.folder)
    instructions = [t["instruction"] for t in after]
    assert len(set(instructions)) == dataset.card["self_instruct"]["tasks"] == COUNT
    assert len(after) == dataset.card["rows"]
    for task in before:  # nothing kept before the interruption was lost
        assert task["instruction"] in instructions
    # seeded randomness per step and candidate: the resumed run made what one run makes
    assert after == _tasks(open_dataset(grown[0], "grown").folder)
    assert dataset.card["self_instruct"]["dropped_instructions"] == grown[1]["self_instruct"]["dropped_instructions"]
