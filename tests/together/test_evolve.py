"""`tllm together evolve`: a population of two adapters taught disjoint fact sets (what four
animals say, what four others say; the merge tests' `parents`), scored on questions about
all eight animals, evolves by merging into an adapter that knows both sets better than
either starting member; its card names its lineage; it is adopted only when it beats what
the assistant uses on the same evaluation.

What is measured: the mean cross-entropy of the answers' tokens ("The owl says hoot."),
the evolve run's own fitness, and, independently, the merge tests' `answer_loss` on the
saved adapter folders."""

import json
import shutil

import pytest

from tests.adapters.test_merge import FIRST, SECOND, TRAINING, answer_loss, copy_adapter
from tests.train.conftest import ANIMALS, chat_rows, write_dataset
from together_llm.adapters.card import AdapterCard
from together_llm.adapters.store import list_adapters
from together_llm.errors import RefusedError, TllmError
from together_llm.home import Home
from together_llm.together.evolve.run import EvolveSettings, run_evolve
from together_llm.together.lineage import ancestors


@pytest.fixture
def home(parents, tmp_path):
    """A copy of the merge tests' home (adapters `first` and `second`), the assistant on the
    tiny model, with datasets `all` (every animal), `first-facts` and `second-facts` (each
    half), and a text dataset `notes`."""
    home = Home.open(tmp_path / "home")
    shutil.copytree(parents.adapters_dir, home.adapters_dir, dirs_exist_ok=True)
    shutil.copy(parents.models_dir / "registry.json", home.models_dir / "registry.json")
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    write_dataset(home, "all", "chat", chat_rows(ANIMALS))
    write_dataset(home, "first-facts", "chat", chat_rows(FIRST))
    write_dataset(home, "second-facts", "chat", chat_rows(SECOND))
    write_dataset(home, "notes", "text", [{"text": "The cat says meow."}])
    return home


def invoke(home, *args):
    from click.testing import CliRunner

    from together_llm.cli.together.evolve import evolve

    return CliRunner().invoke(evolve, [*map(str, args), "--home", str(home.path)])


def test_winner_beats_every_member_and_names_its_lineage(home, tiny_llama):
    result = invoke(
        home,
        "--population",
        "first,second",
        "--generations",
        2,
        "--candidates",
        3,
        "--eval",
        "all",
        "--name",
        "evolved",
    )
    assert result.exit_code == 0, result.output
    output = result.output
    # Each generation's table: members and candidates with parents, method, weights, score.
    assert "generation 1 (loss" in output and "generation 2 (loss" in output
    assert "first+second" in output and "(member)" in output

    run_dir = next((home.path / "together" / "evolve").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    scores = results["scores"]
    winner = results["winner"]
    assert winner["candidate"].startswith("g") and winner["adapter"] == "evolved"
    assert all(scores[winner["candidate"]]["loss"] < scores[m]["loss"] for m in ("first", "second"))
    assert len(results["generations"]) == 2
    for generation in results["generations"]:
        assert len(generation["table"]) == 2 + 3 and len(generation["survivors"]) == 2
        kept = [row["adapter"] for row in generation["table"] if row["kept"]]
        assert kept == generation["survivors"]
        assert {row["method"] for row in generation["table"] if row["candidate"]} <= {
            "svd",
            "ties",
            "dare_ties",
            "linear",
        }

    # Independently: the saved winner answers all eight animals better than either member.
    losses = {
        name: answer_loss(tiny_llama, home.adapters_dir / name, ANIMALS)
        for name in ("first", "second", "evolved")
    }
    assert losses["evolved"] < min(losses["first"], losses["second"]) - 0.1, losses

    # Only the winner joined the adapters; candidates stayed in the run's scratch folder.
    assert list_adapters(home) == ["evolved", "first", "second"]
    assert (run_dir / "candidates" / winner["candidate"] / "adapter_model.safetensors").is_file()
    card = json.loads((home.adapters_dir / "evolved" / "card.json").read_text())
    assert {"first", "second"} <= set(ancestors(AdapterCard.from_dict(card)))
    assert (
        card["evolve"]["run"] == results["run_id"]
        and card["evolve"]["candidate"] == winner["candidate"]
    )
    assert card["merge"]["method"] in ("svd", "ties", "dare_ties", "linear")
    assert "lineage:" in output and "── first" in output and "── second" in output

    # No --adopt: the assistant keeps what it had, and says so.
    assert home.load_config().adapters == []
    assert "not adopted: --adopt was not given" in output


def test_adopts_only_what_beats_the_active_adapter(home):
    # On all eight animals, the active `first` knows only half: the winner beats it.
    config = home.load_config()
    config.adapters = ["first"]
    home.save_config(config)
    settings = EvolveSettings(
        population=["first", "second"], eval="all", generations=2, candidates=3, name="better"
    )
    results = run_evolve(home, settings, adopt=True)
    assert results["adoption"]["adopted"], results["adoption"]
    assert home.load_config().adapters == ["better"]
    assert results["adoption"]["reason"].startswith("adopted better:")

    # On the first four animals, the active `first` is best: a population that never
    # learned them cannot beat it, and nothing changes.
    config.adapters = ["first"]
    home.save_config(config)
    copy_adapter(home, "second", "second-copy")
    settings = EvolveSettings(
        population=["second", "second-copy"],
        eval="first-facts",
        generations=1,
        candidates=2,
        name="worse",
    )
    results = run_evolve(home, settings, adopt=True)
    adoption = results["adoption"]
    assert not adoption["adopted"] and "does not beat adapter(s) first" in adoption["reason"]
    assert adoption["current_scores"]["loss"] < adoption["winner_scores"]["loss"]
    assert home.load_config().adapters == ["first"]


@pytest.fixture
def sure_home(home):
    """`home` with two more adapters, `sure-first` and `sure-second`, trained at a higher rate
    on the same halves, until greedy decoding writes each of their answers exactly (the
    gentler `first` and `second` get the loss down but not every token right)."""
    from together_llm.train.recipe import load_recipe
    from together_llm.train.run import train_model

    for name, data in (("sure-first", "first-facts"), ("sure-second", "second-facts")):
        train_model(home, load_recipe(None, {"data": data, "name": name, **TRAINING, "lr": 1e-2}))
    return home


def test_adopt_against_the_base_by_accuracy(sure_home):
    """No active adapter: the winner is compared with the base model, by answer accuracy."""
    home = sure_home
    result = invoke(
        home,
        "--population",
        "sure-first,sure-second",
        "--generations",
        2,
        "--candidates",
        3,
        "--eval",
        "all",
        "--metric",
        "accuracy",
        "--name",
        "acc",
        "--adopt",
        "--json",
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    adoption = results["adoption"]
    assert adoption["adopted"] and adoption["current"] is None
    assert adoption["winner_scores"]["accuracy"] >= 0.5 > adoption["current_scores"]["accuracy"]
    assert home.load_config().adapters == [results["winner"]["adapter"]]


def test_an_interrupted_run_resumes_where_it_stopped(home):
    """A run stopped in its second generation, after one candidate, and resumed, ends as an
    uninterrupted run does, without merging or scoring again what was already done."""
    settings = dict(population=["first", "second"], eval="all", generations=2, candidates=2)
    straight = run_evolve(home, EvolveSettings(**settings, name="straight"))

    def stop_in_generation_two(done, total):
        if done == 2 + 2 + 1:  # two members, generation one's two candidates, one more
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_evolve(
            home, EvolveSettings(**settings, name="resumed"), progress=stop_in_generation_two
        )
    run_dir = next(
        p for p in (home.path / "together" / "evolve").iterdir() if p.name != straight["run_id"]
    )
    candidates = run_dir / "candidates"
    made = {
        p.name: (p / "adapter_model.safetensors").stat().st_mtime_ns for p in candidates.iterdir()
    }
    assert sorted(made) == ["g1-c1", "g1-c2", "g2-c1"]
    assert "resumed" not in list_adapters(home)

    result = invoke(home, "--resume", run_dir.name)
    assert result.exit_code == 0, result.output
    results = json.loads((run_dir / "results.json").read_text())
    assert [g["generation"] for g in results["generations"]] == [1, 2]
    assert {
        name: (candidates / name / "adapter_model.safetensors").stat().st_mtime_ns for name in made
    } == made  # nothing done twice
    assert results["winner"]["candidate"] == straight["winner"]["candidate"]
    assert results["winner"]["adapter"] == "resumed" and "resumed" in list_adapters(home)
    assert {n: s["loss"] for n, s in results["scores"].items()} == pytest.approx(
        {n: s["loss"] for n, s in straight["scores"].items()}, rel=1e-6
    )


def test_refusals_leave_the_home_as_it_was(home):
    before = sorted(list_adapters(home))
    cases = [
        ({"population": ["first", "ghost"]}, TllmError, "unknown adapter 'ghost'"),
        ({"population": ["first"]}, RefusedError, "name at least two adapters"),
        (
            {"eval": "notes", "metric": "accuracy"},
            RefusedError,
            "--metric accuracy needs chat data; dataset 'notes' is text",
        ),
        ({"eval": "nothing"}, TllmError, "nothing"),
        ({"name": "first"}, RefusedError, "cannot replace population member 'first'"),
        ({"name": "second-copy"}, TllmError, "an adapter named 'second-copy' already exists"),
        ({"generations": 0}, TllmError, "invalid value 0 for --generations: must be at least 1"),
        ({"metric": "speed"}, TllmError, "for --metric: choose one of loss, accuracy"),
    ]
    copy_adapter(home, "first", "second-copy")
    copy_adapter(home, "first", "g1-c1")
    cases.append(({"population": ["first", "g1-c1"]}, RefusedError, "evolve gives its candidates"))
    for changes, error, reason in cases:
        settings = EvolveSettings(**{"population": ["first", "second"], "eval": "all", **changes})
        with pytest.raises(error) as refused:
            run_evolve(home, settings)
        assert reason in str(refused.value)
    runs = home.path / "together" / "evolve"
    assert not runs.exists() or not any(runs.iterdir())
    assert sorted(list_adapters(home)) == sorted(before + ["g1-c1", "second-copy"])

    # The command raises TllmError, which `tllm` prints as a one-line error.
    result = invoke(home, "--resume", "evolve-nope", "--eval", "all")
    assert isinstance(result.exception, TllmError) and "drop --eval" in str(result.exception)
    result = invoke(home, "--resume", "evolve-nope")
    assert "no evolve run 'evolve-nope' to resume" in str(result.exception)
