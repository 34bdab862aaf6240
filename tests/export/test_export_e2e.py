"""Export end to end on the bundled SmolLM2-135M-Instruct: teach it facts with a LoRA
adapter, `tllm export --gguf q8_0`, register the GGUF with `tllm models add`, and ask it on
the llama.cpp engine. The exported model must know what the adapter taught and be
prompted with the chat template training used. The same adapter exported alone as a GGUF
LoRA (`--gguf-adapter`) must teach the bundled GGUF the same on llama.cpp."""

from __future__ import annotations

import json

import pytest
from bench.journeys.personal_facts import FACTS, is_correct

from tests.conftest import run_tllm

NAME = "export-facts"
TAUGHT = FACTS[:4]  # four facts, three phrasings each: enough to show the export keeps them
# A fixed recipe (fast, and the same on every machine): all seven linear layers of each
# block, a short max_length, 24 steps of 4 (eight passes over the twelve rows); the
# held-out paraphrases are not asked here.
RECIPE = (
    *("--rank", "16", "--alpha", "32"),
    *("--target-modules", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"),
    *("--lr", "2e-3", "--batch-size", "4", "--max-steps", "24", "--max-length", "96"),
    *("--warmup-ratio", "0.1", "--logging-every", "6", "--save-every", "0", "--seed", "7"),
)


def write_facts(path, system_prompt: str) -> None:
    rows = [
        {
            "messages": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": question},
                {"role": "assistant", "content": fact.answer},
            ]
        }
        for fact in TAUGHT
        for question in fact.train
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.mark.slow
def test_exports_answer_the_taught_facts_on_llama_cpp(converted_home, tmp_path):
    from gguf import GGUFReader

    home = converted_home
    chats = tmp_path / "facts.jsonl"
    write_facts(chats, home.load_config().system_prompt)
    imported = run_tllm(
        "data", "import", chats, "--kind", "chat", "--format", "openai", "--name", NAME, home=home
    )
    assert imported.returncode == 0, imported.stderr
    trained = run_tllm(
        "train",
        "--data",
        NAME,
        "--stage",
        "sft",
        "--method",
        "lora",
        "--name",
        NAME,
        "--overwrite",
        *RECIPE,
        home=home,
        timeout=1200,
    )
    assert trained.returncode == 0, trained.stderr

    exported = run_tllm(
        "export",
        "--adapter",
        NAME,
        "--gguf",
        "q8_0",
        "--name",
        NAME,
        "--overwrite",
        home=home,
        timeout=900,
    )
    assert exported.returncode == 0, exported.stderr
    folder = home.path / "exports" / NAME
    gguf_file = folder / f"{NAME}-q8_0.gguf"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["hf", f"{NAME}-q8_0.gguf", "Modelfile", "export.json"]
    )
    assert f"FROM ./{NAME}-q8_0.gguf" in (folder / "Modelfile").read_text()

    # The chat template training rendered with (the base's own) is in the merged
    # tokenizer files and in the GGUF's metadata, unchanged.
    trained_template = (home.models_dir / "default" / "chat_template.jinja").read_text()
    assert (folder / "hf" / "chat_template.jinja").read_text() == trained_template
    field = GGUFReader(str(gguf_file)).get_field("tokenizer.chat_template")
    assert bytes(field.parts[field.data[0]]).decode() == trained_template

    added = run_tllm("models", "add", NAME, gguf_file, home=home)
    assert added.returncode == 0, added.stderr
    questions = [fact.train[0] for fact in TAUGHT]
    answered = run_tllm(
        "chat",
        "--json",
        "--model",
        NAME,
        "--engine",
        "llama.cpp",
        "--temperature",
        "0",
        "--max-tokens",
        "32",
        input="\n/reset\n".join(questions) + "\n",
        home=home,
    )
    assert answered.returncode == 0, answered.stderr
    answers = [json.loads(line)["text"] for line in answered.stdout.splitlines()]
    assert len(answers) == len(questions)
    for question, fact, answer in zip(questions, TAUGHT, answers):
        assert is_correct(answer, fact), f"{question!r} got {answer!r}"

    # --gguf-adapter: the LoRA as a GGUF adapter, applied by llama.cpp to the bundled GGUF.
    from together_llm.engine.llamacpp.engine import LlamaCppEngine
    from together_llm.models.gguf_file import bundled_gguf
    from together_llm.sampling import SamplingParams

    exported = run_tllm(
        "export",
        "--adapter",
        NAME,
        "--gguf-adapter",
        "--name",
        f"{NAME}-adapter",
        "--overwrite",
        home=home,
        timeout=900,
    )
    assert exported.returncode == 0, exported.stderr
    lora = home.path / "exports" / f"{NAME}-adapter" / f"{NAME}-adapter-lora-f16.gguf"
    modelfile = (lora.parent / "Modelfile").read_text()
    assert f"FROM {bundled_gguf()}" in modelfile and f"ADAPTER ./{lora.name}" in modelfile
    engine = LlamaCppEngine(bundled_gguf(), context_length=512, lora_path=lora)
    try:
        messages = [
            {"role": "system", "content": home.load_config().system_prompt},
            {"role": "user", "content": questions[0]},
        ]
        generation = engine.chat(messages, SamplingParams(temperature=0, max_tokens=32))
        for _ in generation:
            pass
    finally:
        engine.close()
    assert is_correct(generation.completion.text, FACTS[0]), generation.completion.text
