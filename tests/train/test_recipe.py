"""The recipe: YAML and flags become one checked Recipe, and bad values are refused with a
clear message before anything heavy is loaded."""

import subprocess
import sys

import pytest

from together_llm.errors import TllmError
from together_llm.train.recipe import Recipe, load_recipe, save_recipe
from together_llm.train.stages import STAGES, get_stage


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_yaml_then_flags_override(tmp_path):
    path = write(
        tmp_path,
        "data: chats\nname: me\nlr: 0.001\nmax_steps: 20\n"
        "target_modules: [q_proj, v_proj]\npacking: false\n",
    )
    recipe = load_recipe(path, {"lr": "1e-4", "rank": "16", "max_steps": None})
    assert (recipe.data, recipe.name) == ("chats", "me")
    assert recipe.lr == 1e-4  # the flag wins
    assert recipe.max_steps == 20  # a flag not given keeps the file's value
    assert recipe.rank == 16 and recipe.target_modules == ["q_proj", "v_proj"]
    assert recipe.packing is False and recipe.stage == "sft" and recipe.method == "lora"


def test_saved_recipe_reads_back_the_same(tmp_path):
    recipe = load_recipe(
        None,
        {
            "data": "chats",
            "name": "me",
            "epochs": "2",
            "dora": "true",
            "target_modules": "q_proj,v_proj",
        },
    )
    save_recipe(recipe, tmp_path / "config.yaml")
    assert load_recipe(tmp_path / "config.yaml") == recipe


@pytest.mark.parametrize(
    "yaml_text,message",
    [
        ("data: a\nname: b\nlearning_rate: 0.1\n", "unknown recipe key 'learning_rate'"),
        ("data: a\nname: b\nlr: 0\n", "lr: must be greater than 0"),
        ("data: a\nname: b\nlr: -1e-4\n", "lr: must be greater than 0"),
        ("data: a\nname: b\nstage: dpx\n", "stage: choose one of pt, sft"),
        ("data: a\nname: b\nmethod: lorra\n", "method: choose one of full, lora"),
        ("data: a\nname: b\nbatch_size: 0\n", "batch_size: must be at least 1"),
        ("data: a\nname: b\nepochs: two\n", "epochs: expected a finite number"),
        ("data: a\nname: b\nwarmup_ratio: 1.5\n", "warmup_ratio: must be between 0 and 1"),
        ("name: b\n", "no dataset: give --data"),
        ("data: a\n", "no name for the result: give --name"),
        ("data: a\nname: ../up\n", "invalid adapter name '../up'"),
        ("data: a\nname: b\ninit: random\n", "--init random only makes sense for --stage pt"),
        ("- a list\n", "must hold a mapping"),
    ],
)
def test_bad_recipes_are_refused(tmp_path, yaml_text, message):
    with pytest.raises(TllmError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_recipe(write(tmp_path, yaml_text))


def test_every_stage_is_implemented_and_unknown_ones_are_refused():
    assert set(STAGES) == {"pt", "sft", "seq2seq", "classify", "dpo", "orpo", "kto", "rm", "rl"}
    assert all(stage.implemented for stage in STAGES.values())
    assert get_stage("sft").kinds == ("chat",) and get_stage("pt").kinds == ("text",)
    assert get_stage("seq2seq").kinds == ("seq2seq", "chat")
    with pytest.raises(TllmError, match="unknown stage 'sleep'; stages: pt, sft, seq2seq"):
        get_stage("sleep")


def test_every_field_documents_itself():
    import dataclasses

    for field in dataclasses.fields(Recipe):
        assert len(field.metadata["help"]) > 10, field.name


def test_recipe_and_train_help_import_nothing_heavy():
    code = (
        "import sys; from together_llm.train.recipe import load_recipe; "
        "from together_llm.train.stages import get_stage; import together_llm.cli.train; "
        "print([m for m in ('torch', 'transformers', 'peft', 'trl', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
