"""One settings kit for every settings class: a field's help, choices and bounds are stated
once, and the YAML reader, the run-config reader and the command's flags all obey them."""

import dataclasses

import click
import pytest
from click.testing import CliRunner

from together_llm.data.clean import CleanSettings
from together_llm.errors import TllmError
from together_llm.evaluate.settings import EvalSettings
from together_llm.home import AssistantConfig, GenerationDefaults
from together_llm.serve.settings import ServeSettings
from together_llm.settings_kit import (
    check_fields,
    click_options,
    from_mapping,
    from_options,
    leaf_fields,
)
from together_llm.together.evolve.run import EvolveSettings
from together_llm.together.settings import Federation
from together_llm.train.recipe import Recipe

SETTINGS = [
    AssistantConfig,
    GenerationDefaults,
    Recipe,
    Federation,
    ServeSettings,
    CleanSettings,
    EvalSettings,
    EvolveSettings,
]

# One out-of-bounds or unknown-choice value per class, and what the refusal says.
REFUSED = [
    (AssistantConfig, "context_length", "8", "must be at least 64"),
    (Recipe, "lr", "0", "must be greater than 0"),
    (Federation, "fraction", "1.5", "must be above 0 and at most 1"),
    (ServeSettings, "slots", "65", "must be between 1 and 64"),
    (CleanSettings, "num_perm", "8", "must be at least 16"),
    (EvalSettings, "window", "1", "must be at least 2"),
    (EvolveSettings, "metric", "speed", "choose one of loss, accuracy"),
]


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_setting_documents_itself(cls):
    undocumented = [
        f.name
        for f in leaf_fields(cls)
        if f.metadata.get("cli", True) and not f.metadata.get("help", "").strip()
    ]
    assert not undocumented


@pytest.mark.parametrize("cls,name,raw,reason", REFUSED, ids=lambda v: getattr(v, "__name__", ""))
def test_a_value_out_of_bounds_is_refused_by_flag_name_from_every_source(cls, name, raw, reason):
    flag = "--" + name.replace("_", "-")

    @click.command()
    @click_options(cls)
    def command(**flags):
        required = {"data": "d"} if cls is EvalSettings else {}
        from_options(cls, {**required, **flags})

    refused = CliRunner().invoke(command, [flag, raw, *(["--data", "d"] * (cls is EvalSettings))])
    assert isinstance(refused.exception, TllmError), refused.output
    assert f"invalid value {raw!r} for {flag}: {reason}" in str(refused.exception)
    # the same value from a file (field names) and set in code (checked by check_fields)
    with pytest.raises(TllmError, match=f"for {name}: {reason}"):
        from_mapping(cls, {name: raw}, **({"data": "d"} if cls is EvalSettings else {}))
    made = cls(**({"data": "d"} if cls is EvalSettings else {}))
    setattr(made, name, raw)
    with pytest.raises(TllmError, match=reason):
        check_fields(made)


def test_unknown_keys_are_refused_by_name_and_values_take_their_types():
    with pytest.raises(TllmError, match="unknown recipe key 'learning_rate'; recipe keys: data"):
        from_mapping(Recipe, {"learning_rate": 1e-4}, what="recipe key")
    recipe = from_mapping(Recipe, {"max_steps": "20", "dora": "yes", "target_modules": "q,v"})
    assert (recipe.max_steps, recipe.dora, recipe.target_modules) == (20, True, ["q", "v"])
    with pytest.raises(TllmError, match="invalid value 'often' for save_every: expected an"):
        from_mapping(Recipe, {"save_every": "often"})


def test_options_not_given_keep_the_class_defaults():
    @click.command()
    @click_options(CleanSettings)
    def command(**flags):
        click.echo(repr(from_options(CleanSettings, flags)))

    shown = CliRunner().invoke(command, ["--drop", "a,b", "--drop", "c", "--no-fix-unicode"])
    expected = dataclasses.replace(CleanSettings(), drop=["a,b", "c"], fix_unicode=False)
    assert shown.output.strip() == repr(expected)  # a pattern keeps its comma
