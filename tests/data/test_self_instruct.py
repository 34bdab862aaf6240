"""Self-Instruct: the bundled seed tasks, the paper's filters, the prompts' parsers, and end
to end with the bundled model as the teacher (a small dataset, and resuming after Ctrl-C)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys

import orjson
import pytest

from tests.conftest import ROOT, run_tllm
from tests.data.scripted_teacher import ScriptedTeacher
from together_llm.data.generate import filters
from together_llm.data.generate import self_instruct as si
from together_llm.data.generate.similarity import InstructionPool, rouge_l
from together_llm.data.generate.teacher import public_url, teacher_identity
from together_llm.data.generate.work import WorkFolder
from together_llm.data.store import open_dataset
from together_llm.errors import TllmError
from together_llm.home import Home


def _pool(*texts):
    return InstructionPool(texts), {filters.normalize(t) for t in texts}


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
        assert filters.instruction_problem(task["instruction"], *_pool(*others)) is None, task
    for a, b in itertools.combinations(seeds, 2):
        assert rouge_l(a["instruction"], b["instruction"]) < 0.7


def test_seed_file_errors_name_the_line(tmp_path):
    good = orjson.dumps(
        {"instruction": "Name a colour.", "instances": [{"input": "", "output": "Red"}]}
    )
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
    result = run_tllm(
        "data", "self-instruct", "--seeds", path, "--count", "2", "--name", "x", home=home
    )
    assert result.returncode == 1
    assert "mine.jsonl:2:" in result.stderr and "Traceback" not in result.stderr


# --- filters -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Draw a cat sitting on a fence.",
        "Describe the image below in detail.",
        "Summarize the plot of the film.",
        "Open the files and count their lines.",
        "Tell me how to go to the station.",
        "Look at the GRAPHS and explain the trend.",
    ],
)
def test_keyword_filter_drops_what_a_text_model_cannot_serve(text):
    assert filters.instruction_problem(text, *_pool()) == "keyword"


@pytest.mark.parametrize(
    "text",
    [
        "Explain the drawbacks of nuclear power.",
        "Describe the job of a mapmaker.",
        "Write a profile of a famous scientist.",
        "Suggest a plotline twist for a mystery novel.",
    ],
)
def test_keyword_filter_matches_whole_words_only(text):
    assert filters.instruction_problem(text, *_pool()) is None


def test_length_junk_and_duplicate_filters():
    pool = _pool("Write a haiku about rain.")
    assert filters.instruction_problem("Write haiku.", *pool) == "too short"
    assert filters.instruction_problem("Name three birds.", *pool) is None  # 3 words is enough
    assert filters.instruction_problem("Write " + "very " * 150 + "long.", *pool) == "too long"
    assert filters.instruction_problem("- Write a list of birds.", *pool) == "junk"
    assert filters.instruction_problem("¿Cuál es la capital de Francia?", *pool) == "junk"
    assert filters.instruction_problem("write a  HAIKU about rain.", *pool) == "duplicate"


def test_rouge_rule_drops_near_copies_of_kept_instructions():
    pool = _pool("Write a short poem about the sea.")
    # 6 of 7 tokens shared: ROUGE-L 12/14 = 0.86 >= 0.7
    assert filters.instruction_problem("Write a short poem about the ocean.", *pool) == "similar"
    assert filters.instruction_problem("Write a recipe for vegetable soup.", *pool) is None


def test_instance_filters():
    shown = frozenset({filters.normalize("Tom has 12 - 5 + 8 = 15 apples.")})
    kept = [{"input": "Paris", "output": "France"}]
    check = lambda given, output: filters.instance_problem(
        {"input": given, "output": output}, kept, shown
    )
    assert check("Rome", "  ") == "empty output"
    assert check("Hello there", "hello  there") == "output is input"
    assert check("", "Tom has 12 - 5 + 8 = 15 apples.") == "copied example"
    assert check("paris", "Francia") == "duplicate instance"
    assert check("word " * 300, "word " * 101) == "instance too long"
    assert check("Berlin", "Germany") is None


# --- parsing what the teacher writes -----------------------------------------------------
def test_work_folder_recovers_from_an_interruption_at_any_point(tmp_path):
    settings = {"teacher": {"model": "default", "gguf": "/m.gguf", "gguf_bytes": 1}, "seed": 0}
    folder = tmp_path / ".self-instruct-x"
    task = {
        "instruction": "Name two oceans.",
        "is_classification": False,
        "instances": [{"input": "", "output": "Atlantic and Pacific."}],
    }
    with WorkFolder(folder, settings) as work:
        work.load()
        work.count("instructions", ["similar"])
        work.state["position"] = 1
        work.save()
        # killed after the task line was flushed but before state.json was updated, in the
        # middle of writing the next line
        work.keep(task, ["empty output"])
        with open(work.tasks_path, "ab") as f:
            f.write(b'{"step": 0, "position": 2, "instr')
    with WorkFolder(folder, settings) as resumed:
        resumed.load()
        assert [t["instruction"] for t in resumed.tasks] == ["Name two oceans."]
        assert resumed.tasks_path.read_bytes().count(b"\n") == 1  # the half line is gone
        assert (resumed.state["step"], resumed.state["position"]) == (0, 2)  # the kept one is done
        assert resumed.state["dropped_instructions"] == {"similar": 1}
        assert resumed.state["dropped_instances"] == {"empty output": 1}
    with (
        pytest.raises(TllmError, match="--seed was 0, now 1"),
        WorkFolder(folder, {**settings, "seed": 1}) as other,
    ):
        other.load()


_HOLD = """
import sys, time
from pathlib import Path
from together_llm.data.generate.work import WorkFolder
with WorkFolder(Path(sys.argv[1]), {}):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_the_same_work_folder_is_refused_until_the_first_one_dies(tmp_path):
    folder = tmp_path / ".self-instruct-x"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TllmError, match=rf"already running \(pid {holder.pid}\)"):
            WorkFolder(folder, {}).__enter__()
    finally:
        holder.kill()  # like kill -9: no clean-up runs, the lock file stays
        holder.wait()
    assert (folder / "lock").is_file()
    with WorkFolder(folder, {}) as work:  # a dead run's lock does not block
        assert (folder / "lock").read_text().strip() == str(os.getpid())
        work.load()


def test_self_instruct_refuses_to_run_beside_a_run_of_the_same_name(home):
    with WorkFolder(home.path / "datasets" / ".self-instruct-grown", {}):
        with pytest.raises(TllmError, match=rf"already running \(pid {os.getpid()}\)"):
            si.self_instruct(home, "grown", 2)
        result = run_tllm("data", "self-instruct", "--count", "2", "--name", "grown", home=home)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"already running (pid {os.getpid()})" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (home.path / "datasets" / "grown").exists()


def test_resuming_with_another_model_behind_default_is_refused(home, tmp_path):
    from tests.tiny_models import make_tiny_model
    from together_llm.models.registry import add_model

    bundled = teacher_identity(home, "default")
    assert bundled["model"] == "default" and bundled["gguf_bytes"] > 0
    folder = home.path / "datasets" / ".self-instruct-grown"
    with WorkFolder(folder, {"teacher": bundled, "seed": 0}) as work:
        work.load()
    add_model(home, "tiny", str(make_tiny_model("gpt2", tmp_path / "tiny")))
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    switched = teacher_identity(home, "default")  # the same --teacher, another model now
    assert switched["model"] == "tiny" and switched["fingerprint"]
    with (
        pytest.raises(
            TllmError, match=r"the teacher was model default \(.*gguf.*\), now model tiny"
        ),
        WorkFolder(folder, {"teacher": switched, "seed": 0}) as work,
    ):
        work.load()


def test_teacher_credentials_never_reach_the_work_folder_or_card(home):
    import socket

    with socket.socket() as s:  # a port nothing listens on: the run fails at the first question
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://alice:s3cret@127.0.0.1:{port}/v1?token=t0ken"
    assert public_url(url) == f"http://127.0.0.1:{port}/v1"
    with pytest.raises(TllmError, match="cannot reach"):
        si.self_instruct(home, "grown", 2, teacher=url, teacher_model="m", api_key="sk-k3y")
    state = (home.path / "datasets" / ".self-instruct-grown" / "state.json").read_text()
    assert orjson.loads(state)["settings"]["teacher"] == {
        "url": f"http://127.0.0.1:{port}/v1",
        "remote_model": "m",
    }
    for path in (home.path / "datasets").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "s3cret" not in text and "t0ken" not in text and "sk-k3y" not in text, path


# --- end to end with the bundled model ---------------------------------------------------
COUNT = 3


def _tasks(folder):
    return [orjson.loads(line) for line in (folder / "tasks.jsonl").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A dataset grown in one uninterrupted run."""
    home = Home.open(tmp_path_factory.mktemp("self-instruct") / "home")
    result = run_tllm(
        "data",
        "self-instruct",
        "--count",
        COUNT,
        "--seed",
        3,
        "--name",
        "grown",
        "--json",
        home=home,
    )
    assert result.returncode == 0, result.stderr
    return home, orjson.loads(result.stdout)


@pytest.mark.slow
def test_self_instruct_end_to_end(grown):
    home, card = grown
    dataset = open_dataset(home, "grown")
    details = dataset.card["self_instruct"]
    assert card == dataset.card and dataset.kind == "chat"
    assert details["tasks"] == COUNT and details["teacher"] == "default" and details["seed"] == 3
    assert (
        details["teacher_identity"]["model"] == "default"
        and details["teacher_identity"]["gguf_bytes"] > 0
    )
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
        assert filters.instruction_problem(task["instruction"], *_pool(*seeds, *kept)) is None
        kept.append(task["instruction"])
    assert not (home.path / "datasets" / ".self-instruct-grown").exists()


def test_interrupted_run_resumes_without_losing_or_repeating(tmp_path):
    args = [
        "data",
        "self-instruct",
        "--count",
        "3",
        "--seed",
        "3",
        "--name",
        "grown",
        "--teacher-model",
        "scripted",
    ]
    one_run = Home.open(tmp_path / "one-run")
    plain = ScriptedTeacher()
    try:
        result = run_tllm(*args, "--teacher", plain.url, home=one_run)
        assert result.returncode == 0, result.stderr
    finally:
        plain.close()

    home = Home.open(tmp_path / "home")
    work = home.path / "datasets" / ".self-instruct-grown"
    teacher = ScriptedTeacher(hold=ScriptedTeacher.INSTRUCTIONS[1])
    try:
        env = {**os.environ, "TLLM_HOME": str(home.path)}
        env.pop("TLLM_DEBUG", None)
        command = [sys.executable, "-m", "together_llm.cli.main", *args, "--teacher", teacher.url]
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # The first task is kept and saved before the second task's instances are asked for,
        # and that request is held.
        assert teacher.held.wait(120), process.communicate(timeout=60)[1]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        before = _tasks(work)
        assert [t["instruction"] for t in before] == ScriptedTeacher.INSTRUCTIONS[:1]
        assert orjson.loads((work / "state.json").read_bytes())["settings"]["teacher"] == {
            "url": teacher.url,
            "remote_model": "scripted",
        }

        teacher.hold = None  # the same teacher at the same address, now answering everything
        result = run_tllm(*command[3:], home=home)
        assert result.returncode == 0, result.stderr
    finally:
        teacher.close()
    dataset = open_dataset(home, "grown")
    after = _tasks(dataset.folder)
    assert [t["instruction"] for t in after] == ScriptedTeacher.INSTRUCTIONS
    assert dataset.card["self_instruct"]["tasks"] == 3 and len(after) == dataset.card["rows"]
    # nothing kept before the interruption was lost or made again
    assert [(t["input"], t["output"]) for t in after[:1]] == [
        (x["input"], x["output"]) for x in before[0]["instances"]
    ]
    # seeded randomness per step and candidate: the resumed run made what one run makes
    assert after == _tasks(open_dataset(one_run, "grown").folder)
    # the resumed run asked only for what the interrupted one had not finished
    first, second, third = ScriptedTeacher.INSTRUCTIONS
    assert teacher.asked == [first, second, second, third]
