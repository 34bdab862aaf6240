"""An adapter on the llama.cpp engine without merging: its GGUF LoRA, written on first use
(or by `tllm export --gguf-adapter`), lives in the adapter's folder, and `tllm ask --adapter A`
applies it to the GGUF base. On a tiny LLaMA with the bundled model's tokenizer (test_export.py's
`tiny_smol`), registered as a GGUF file with its Hugging Face twin, and a LoRA taught one
answer in a few hundred milliseconds of training."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.conftest import run_tllm
from tests.export.test_export import tiny_smol  # noqa: F401  (the fixture)
from tests.tiny_models import one_torch_thread
from together_llm.home import Home

QUESTION = "What is the moon made of?"
ANSWER = "Green cheese, said the owl."
OTHER = "Blue moonstone, said the fox."


def teach(model_dir, adapter_dir, system_prompt: str, steps: int = 100, answer=ANSWER) -> None:
    """Train a LoRA on `model_dir` to answer QUESTION with ANSWER (after the chat template's
    prompt, as the engines render it) and save it as a PEFT adapter."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": QUESTION}]
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    taught = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([list(prompt) + taught])
    labels = ids.clone()
    labels[0, : len(prompt)] = -100
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(
            r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
        ),
    )
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    with one_torch_thread():
        for _ in range(steps):
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    assert loss.item() < 0.05, f"the tiny LoRA did not learn its answer (loss {loss.item():.3f})"
    model.save_pretrained(adapter_dir)


@pytest.fixture(scope="module")
def lora_home(tmp_path_factory, tiny_smol):  # noqa: F811
    """A home whose model `smol` is the tiny LLaMA as an f16 GGUF (with its HF twin in
    models/smol, as `tllm models convert` leaves it), and adapter `moon` taught ANSWER."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from together_llm.export.exporter import export
    from together_llm.models.fingerprint import fingerprint
    from together_llm.models.registry import add_model

    root = tmp_path_factory.mktemp("lora")
    # At the usual 0.02 init the tied output embeddings are too small for any hidden state to
    # make one token clearly likely, so a LoRA could not teach an answer; at 0.4 it can.
    model = AutoModelForCausalLM.from_pretrained(tiny_smol)
    for weight in model.parameters():
        if weight.dim() > 1:  # matrices and embeddings; norms stay at one
            weight.data *= 20
    smol = root / "smol"
    model.save_pretrained(smol)
    AutoTokenizer.from_pretrained(tiny_smol).save_pretrained(smol)
    home = Home.open(root / "home")
    add_model(home, "smol-hf", str(smol))
    base = export(home, "smol", model="smol-hf", gguf=["f16"], report=lambda m: None)
    add_model(home, "smol", str(base.folder / "smol-f16.gguf"))
    shutil.copytree(smol, home.models_dir / "smol")
    config = home.load_config()
    config.model, config.context_length = "smol", 256  # all the tiny model holds
    home.save_config(config)
    folder = home.adapters_dir / "moon"
    teach(smol, folder, config.system_prompt)
    (folder / "card.json").write_text(
        json.dumps(
            {
                "name": "moon",
                "base": "smol",
                "base_fingerprint": fingerprint(home.models_dir / "smol"),
                "stage": "sft",
                "method": "lora",
            }
        )
    )
    return home


def ask(home, *args):
    done = run_tllm(
        "ask", "--json", "--temperature", "0", "--max-tokens", "12", *args, QUESTION, home=home
    )
    return done.returncode, (
        json.loads(done.stdout)["text"] if done.returncode == 0 else done.stderr
    )


def test_a_lora_gets_its_gguf_form_on_first_use_with_no_export_command(lora_home):
    folder = lora_home.adapters_dir / "moon"
    assert not (folder / "adapter.gguf").exists()  # taught outside `tllm train`: no form yet
    shown = run_tllm("adapters", "show", "moon", "--json", home=lora_home)
    assert json.loads(shown.stdout)["engine"] == "llama.cpp (GGUF LoRA written on first use)"
    code, taught = ask(lora_home, "--adapter", "moon", "--engine", "llama.cpp")
    assert code == 0, taught
    assert taught.startswith("Green cheese, said the owl"), taught
    assert (folder / "adapter.gguf").is_file() and (folder / "adapter.gguf.json").is_file()
    shown = run_tllm("adapters", "show", "moon", "--json", home=lora_home)
    assert json.loads(shown.stdout)["engine"] == "llama.cpp (GGUF LoRA current)"


def test_an_adapter_llama_cpp_cannot_apply_says_why_and_runs_on_transformers(lora_home):
    from together_llm.engine.choice import open_engine

    dora = lora_home.adapters_dir / "moon-dora"
    shutil.copytree(lora_home.adapters_dir / "moon", dora)
    for made in ("adapter.gguf", "adapter.gguf.json"):
        (dora / made).unlink(missing_ok=True)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    try:
        shown = json.loads(
            run_tllm("adapters", "show", "moon-dora", "--json", home=lora_home).stdout
        )
        assert shown["engine"].startswith("transformers (adapter 'moon-dora' is DoRA")
        code, error = ask(lora_home, "--adapter", "moon-dora", "--engine", "llama.cpp")
        assert code == 1 and "llama.cpp applies plain LoRA, not DoRA" in error
        engine = open_engine(lora_home, lora_home.load_config(), adapter="moon-dora")
        engine.close()
        assert engine.name == "transformers" and not (dora / "adapter.gguf").exists()
    finally:
        shutil.rmtree(dora)


def test_gguf_lora_answers_what_the_adapter_taught_on_llama_cpp(lora_home):
    from together_llm.engine.choice import open_engine
    from together_llm.export.exporter import export

    export(lora_home, "moon-gguf", adapter="moon", gguf_adapter=True, report=lambda m: None)
    assert (lora_home.adapters_dir / "moon" / "adapter.gguf").is_file()

    code, taught = ask(lora_home, "--adapter", "moon", "--engine", "llama.cpp")
    assert code == 0, taught
    assert taught.startswith("Green cheese, said the owl"), taught
    code, bare = ask(lora_home, "--engine", "llama.cpp")  # the base alone knows nothing of it
    assert code == 0 and "Green cheese" not in bare, bare

    # auto picks llama.cpp for the GGUF base with that adapter, without torch's engine
    engine = open_engine(lora_home, lora_home.load_config(), adapter="moon")
    try:
        assert engine.name == "llama.cpp"
    finally:
        engine.close()
    # and the server's batching engine applies the LoRA as well
    engine = open_engine(lora_home, lora_home.load_config(), adapter="moon", slots=2)
    try:
        messages = [
            {"role": "system", "content": lora_home.load_config().system_prompt},
            {"role": "user", "content": QUESTION},
        ]
        from together_llm.sampling import SamplingParams

        answer = engine.chat(messages, SamplingParams(temperature=0, max_tokens=12)).run().text
    finally:
        engine.close()
    assert answer.startswith("Green cheese, said the owl"), answer


def test_a_retrained_adapter_gets_a_new_gguf_lora_not_its_stale_one(lora_home):
    from together_llm.engine.choice import open_engine

    folder = lora_home.adapters_dir / "moon"
    engine = open_engine(lora_home, lora_home.load_config(), adapter="moon")
    engine.close()
    assert engine.name == "llama.cpp"
    made_from = json.loads((folder / "adapter.gguf.json").read_text())["weights"]
    weights = folder / "adapter_model.safetensors"
    saved = weights.read_bytes()
    try:
        weights.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))  # other weights, same name
        engine = open_engine(lora_home, lora_home.load_config(), adapter="moon", engine="llama.cpp")
        engine.close()
        rewritten = json.loads((folder / "adapter.gguf.json").read_text())["weights"]
        assert rewritten != made_from  # written again from the new weights
    finally:
        weights.write_bytes(saved)


def test_server_answers_with_the_gguf_lora_and_serves_an_added_exported_gguf(lora_home):
    """`tllm models add` takes an exported GGUF and `tllm serve` serves it by name; an
    adapter with its GGUF LoRA is served on llama.cpp by its name too."""
    from fastapi.testclient import TestClient

    from together_llm.export.exporter import export
    from together_llm.serve.app import create_app
    from together_llm.serve.settings import ServeSettings

    if not (lora_home.adapters_dir / "moon" / "adapter.gguf").is_file():
        export(lora_home, "moon-gguf", adapter="moon", gguf_adapter=True, report=lambda m: None)
    added = run_tllm(
        "models",
        "add",
        "smol-export",
        lora_home.path / "exports" / "smol" / "smol-f16.gguf",
        home=lora_home,
    )
    assert added.returncode == 0, added.stderr
    messages = [
        {"role": "system", "content": lora_home.load_config().system_prompt},
        {"role": "user", "content": QUESTION},
    ]
    with TestClient(create_app(ServeSettings(home=str(lora_home.path), ui=False))) as client:
        names = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert "smol-export" in names and "moon" in names
        answers = {}
        for model in ("moon", "smol-export"):
            reply = client.post(
                "/v1/chat/completions",
                json={"model": model, "messages": messages, "temperature": 0, "max_tokens": 12},
            )
            assert reply.status_code == 200, reply.text
            answers[model] = reply.json()["choices"][0]["message"]["content"]
        # both on llama.cpp: the adapter is not merged, nor run on transformers
        assert {e.name for e in client.app.state.engines.opened()} == {"llama.cpp"}
    assert answers["moon"].startswith("Green cheese, said the owl"), answers
    assert "Green cheese" not in answers["smol-export"], answers


def test_a_running_server_serves_a_retrained_adapter_anew_and_a_removed_one_404(lora_home):
    """Retraining replaces the adapter's folder while `tllm serve` runs: the next request
    answers with the new weights (its GGUF form written anew); a removed adapter is a 404."""
    from fastapi.testclient import TestClient

    from together_llm.home import replace_dir
    from together_llm.serve.app import create_app
    from together_llm.serve.settings import ServeSettings

    folder = lora_home.adapters_dir / "moon"
    kept = lora_home.path / "moon-kept"
    shutil.copytree(folder, kept)
    messages = [
        {"role": "system", "content": lora_home.load_config().system_prompt},
        {"role": "user", "content": QUESTION},
    ]
    body = {"model": "moon", "messages": messages, "temperature": 0, "max_tokens": 12}
    try:
        with TestClient(create_app(ServeSettings(home=str(lora_home.path), ui=False))) as client:
            first = client.post("/v1/chat/completions", json=body).json()
            assert first["choices"][0]["message"]["content"].startswith("Green cheese")
            staging = lora_home.path / "moon-new"
            teach(lora_home.models_dir / "smol", staging, messages[0]["content"], answer=OTHER)
            shutil.copy(kept / "card.json", staging / "card.json")
            replace_dir(staging, folder)  # what `tllm train --overwrite` does on saving
            second = client.post("/v1/chat/completions", json=body).json()
            assert second["choices"][0]["message"]["content"].startswith("Blue moon"), second
            shutil.rmtree(folder)
            gone = client.post("/v1/chat/completions", json=body)
            assert gone.status_code == 404 and "'moon' does not exist" in gone.text
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(kept, folder)
        shutil.rmtree(kept)


def test_json_schema_forced_tools_and_logprobs_work_on_an_adapter_via_openai(lora_home):
    """What the base does on llama.cpp, the adapter does too: through the official client,
    a json_schema answer parses and fits, tool_choice required gives a call, logprobs come."""
    from fastapi.testclient import TestClient
    from openai import OpenAI

    from together_llm.serve.app import create_app
    from together_llm.serve.settings import ServeSettings

    schema = {
        "type": "object",
        "properties": {"food": {"enum": ["cheese", "rock"]}},  # short: the tiny model rambles
        "required": ["food"],
        "additionalProperties": False,
    }
    tool = {
        "type": "function",
        "function": {
            "name": "record_food",
            "parameters": schema,
        },
    }
    ask = [{"role": "user", "content": QUESTION}]
    with TestClient(create_app(ServeSettings(home=str(lora_home.path), ui=False))) as http:
        client = OpenAI(base_url="http://testserver/v1", api_key="-", http_client=http)
        shaped = client.chat.completions.create(
            model="moon",
            messages=ask,
            max_tokens=40,
            temperature=0,
            response_format={"type": "json_schema", "json_schema": {"name": "f", "schema": schema}},
        )
        assert json.loads(shaped.choices[0].message.content)["food"] in ("cheese", "rock")
        called = client.chat.completions.create(
            model="moon", messages=ask, max_tokens=100, tools=[tool], tool_choice="required"
        )
        assert called.choices[0].finish_reason == "tool_calls"
        assert called.choices[0].message.tool_calls[0].function.name == "record_food"
        scored = client.chat.completions.create(
            model="moon", messages=ask, max_tokens=6, logprobs=True, top_logprobs=2
        )
        tokens = scored.choices[0].logprobs.content
        assert tokens and all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in tokens)
        assert {e.name for e in http.app.state.engines.opened()} == {"llama.cpp"}


def test_an_imported_adapter_has_its_gguf_lora_as_soon_as_it_lands(lora_home, tmp_path):
    """Import (like training, merging, federation and evolution) writes the GGUF form when
    it saves the adapter, so the first question does not wait for a conversion."""
    archive = tmp_path / "moon.tar"
    exported = run_tllm("adapters", "export", "moon", str(archive), home=lora_home)
    assert exported.returncode == 0, exported.stderr
    imported = run_tllm("adapters", "import", str(archive), "--name", "moon-copy", home=lora_home)
    try:
        assert imported.returncode == 0, imported.stderr
        folder = lora_home.adapters_dir / "moon-copy"
        assert (folder / "adapter.gguf").is_file() and (folder / "adapter.gguf.json").is_file()
        shown = run_tllm("adapters", "show", "moon-copy", "--json", home=lora_home)
        assert json.loads(shown.stdout)["engine"] == "llama.cpp (GGUF LoRA current)"
    finally:
        shutil.rmtree(lora_home.adapters_dir / "moon-copy", ignore_errors=True)
