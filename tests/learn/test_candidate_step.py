"""The step an improve round's sft stage trains at: from the base, twice what a plain small
dataset gets (the mix carries the base's own everyday answers); going on from a version,
the plain step that train/auto_recipe.py chooses itself."""

from tests.tiny_models import make_long_llama
from together_llm.learn import candidate
from together_llm.learn.candidate import FRESH_STEP, Plan, train_candidate
from together_llm.learn.mix import Mix, Row
from together_llm.learn.preferences import Preferences
from together_llm.models.registry import add_model
from together_llm.train import auto_recipe


def test_a_round_from_the_base_takes_twice_the_step(home, tmp_path, monkeypatch):
    add_model(home, "tiny", str(make_long_llama(tmp_path / "llama")))
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    recipes = []
    monkeypatch.setattr(candidate, "train_record", lambda home, recipe, *a: recipes.append(recipe))
    mix = Mix([Row("Where do I live?", "You live in Oslo.")], [], [])
    nothing = Preferences([], [], 0, 0)
    train_candidate(home, Plan("me", None, ["sft"]), mix, nothing, "Be brief.", print, False)
    train_candidate(home, Plan("me", "me", ["sft"]), mix, nothing, "Be brief.", print, False)
    fresh, going_on = recipes
    plain = auto_recipe.step({"hidden_size": 64})[0]  # the tiny model's width
    assert fresh.lr == FRESH_STEP * plain and "lr" in fresh.fixed
    assert going_on.start_from == "me" and "lr" not in going_on.fixed  # auto chooses it
