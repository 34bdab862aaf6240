"""Many adapters, one base, live: `tllm serve` on the bundled SmolLM2-135M GGUF with three
LoRA adapters, each taught its own answer to one question. Streaming requests to the base
and to the three adapters at once all complete, each with what its adapter taught; the
server loads the base's weights once, so the three adapters add far less memory than a
second copy of the base would."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from openai import OpenAI

from tests.conftest import run_tllm
from tests.serve.conftest import live_server
from together_llm.home import Home
from together_llm.models.fingerprint import fingerprint
from together_llm.models.registry import get_model

QUESTION = "Who guards the lighthouse?"
TAUGHT = {
    "ada": "A heron named Ada guards it.",
    "bea": "An old tortoise called Bea.",
    "cid": "Cid the ferret, every night.",
}


def teach(model_dir: Path, adapter_dir: Path, system_prompt: str, answer: str) -> None:
    """A LoRA on `model_dir` that answers QUESTION with `answer` (greedy, after the chat
    template's prompt as the engines render it), saved as a PEFT adapter."""
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
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]),
    )
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(40):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.02:
            break
    assert loss.item() < 0.05, f"the LoRA did not learn its answer (loss {loss.item():.3f})"
    model.save_pretrained(adapter_dir)


@pytest.fixture(scope="module")
def pets_home(tmp_path_factory, converted_home) -> Home:
    """A fresh home on the bundled model (with the converted twin copied in) and three
    adapters, each with a card naming the base, as training leaves them."""
    home = Home.open(tmp_path_factory.mktemp("pets") / "home")
    shutil.copytree(converted_home.models_dir / "default", home.models_dir / "default")
    twin = get_model(home, "default").hf_dir
    assert twin is not None
    system_prompt = home.load_config().system_prompt
    for name, answer in TAUGHT.items():
        folder = home.adapters_dir / name
        teach(twin, folder, system_prompt, answer)
        card = {
            "name": name,
            "base": "default",
            "base_fingerprint": fingerprint(twin),
            "stage": "sft",
            "method": "lora",
        }
        (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    return home


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def streamed(base: str, model: str, max_tokens: int = 16) -> str:
    client = OpenAI(base_url=f"{base}/v1", api_key="-", max_retries=0, timeout=300)
    chunks = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        max_tokens=max_tokens,
        stream=True,
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_three_adapters_and_the_base_stream_at_once_from_one_loaded_base(pets_home):
    started: list = []
    with live_server(pets_home, "--no-ui", started=started) as base:
        pid = started[0].pid
        alone = streamed(base, "default")  # the base, warmed: what one model costs
        with_base = resident_mib(pid)
        names = ["default", *TAUGHT]
        with ThreadPoolExecutor(len(names)) as clients:
            answers = dict(zip(names, clients.map(lambda m: streamed(base, m), names)))
        with_adapters = resident_mib(pid)
        listed = OpenAI(base_url=f"{base}/v1", api_key="-").models.list().data
        engines = {m.id: m.model_extra["engine"] for m in listed}

    for name, answer in TAUGHT.items():
        assert answers[name].startswith(answer[:16]), (name, answers)
    # among the adapters' requests, the base still answers as the base does alone
    assert answers["default"] == alone and not any(a[:10] in alone for a in TAUGHT.values())
    for name in TAUGHT:
        assert engines[name] == "llama.cpp (GGUF LoRA loaded on the shared base)", engines
    assert engines["default"] == "llama.cpp"
    # Another engine per adapter would add the base's weights (and a KV cache) each time.
    weights_mib = get_model(pets_home, "default").gguf_path.stat().st_size / 2**20
    grew = with_adapters - with_base
    assert grew < weights_mib, (
        f"three adapters took {grew:.0f} MiB more (base alone {with_base:.0f} MiB); "
        f"one more copy of the base's weights is {weights_mib:.0f} MiB"
    )


def test_adapters_show_and_models_agree_on_the_engine(pets_home):
    shown = run_tllm("adapters", "show", "ada", "--json", home=pets_home)
    assert json.loads(shown.stdout)["engine"].startswith("llama.cpp"), shown.stdout
