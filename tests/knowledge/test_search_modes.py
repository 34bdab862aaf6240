"""`tllm knowledge add --embed-model` and `search --mode bm25|dense|hybrid` on a tiny encoder.

The encoder is a tiny random BERT (tests/tiny_models.py): its vectors mean nothing, but a
text's vector equals itself, so a chunk's own words find that chunk first by dense search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from together_llm.cli.knowledge import knowledge

from ..tiny_models import make_tiny_model
from .corpus import DOCUMENTS, write_corpus


def run(*args):
    result = CliRunner().invoke(knowledge, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout  # stderr has transformers' loading bars


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return make_tiny_model("bert", tmp_path_factory.mktemp("encoder") / "tiny-bert", task="embed")


def test_add_embeds_and_each_mode_ranks(home, tmp_path, encoder):
    folder = write_corpus(tmp_path / "corpus")
    added = json.loads(run("add", folder, "--embed-model", encoder, "--json", "--home", home.path))
    assert len(added["added"]) == len(DOCUMENTS) and added["embedded"] == added["chunks"]
    again = json.loads(run("add", folder, "--embed-model", encoder, "--json", "--home", home.path))
    assert again["embedded"] == 0 and len(again["unchanged"]) == len(DOCUMENTS)

    text = DOCUMENTS["solar.md"].split("\n\n", 1)[1].strip()
    for mode in ("bm25", "dense", "hybrid"):
        rows = json.loads(
            run(
                "search",
                text,
                "--mode",
                mode,
                "--embed-model",
                encoder,
                "--limit",
                "3",
                "--json",
                "--home",
                home.path,
            )
        )
        assert Path(rows[0]["source"]).name == "solar.md", mode
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    dense = json.loads(
        run(
            "search",
            text,
            "--mode",
            "dense",
            "--embed-model",
            encoder,
            "--json",
            "--home",
            home.path,
        )
    )
    assert dense[0]["score"] == pytest.approx(1.0, abs=1e-4)  # cosine of a text with itself

    # with the model in assistant.yaml, `auto` is hybrid: scores are fused RRF scores (< 1)
    run_config = home.load_config()
    run_config.knowledge_embed_model = str(encoder)
    home.save_config(run_config)
    auto = json.loads(run("search", text, "--json", "--home", home.path))
    assert Path(auto[0]["source"]).name == "solar.md" and auto[0]["score"] < 0.05


def test_dense_without_a_model_or_vectors_is_refused(home, tmp_path, encoder):
    run("add", write_corpus(tmp_path / "corpus"), "--home", home.path)
    no_model = CliRunner().invoke(
        knowledge, ["search", "honey", "--mode", "hybrid", "--home", str(home.path)]
    )
    assert no_model.exit_code != 0 and "needs an embedding model" in str(no_model.exception)
    no_vectors = CliRunner().invoke(
        knowledge,
        [
            "search",
            "honey",
            "--mode",
            "dense",
            "--embed-model",
            str(encoder),
            "--home",
            str(home.path),
        ],
    )
    assert no_vectors.exit_code != 0 and "no vectors" in str(no_vectors.exception)
