"""Adapters chosen per request on the server's one loaded base: `adapter_scale` sets the
strength of the adapter `model` names, `lora` (llama.cpp's form, by name or by the number
GET /lora-adapters gives) adds adapters or sets theirs; what does not fit is a 400 naming
the field. On the tiny LLaMA of test_adapter_gguf.py with two adapters, `moon` and `fox`,
taught different answers to one question."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from tests.export.test_adapter_gguf import ANSWER, OTHER, QUESTION, lora_home, teach  # noqa: F401
from tests.export.test_export import tiny_smol  # noqa: F401  (lora_home's fixture)
from together_llm.engine.llamacpp.batch import BatchedLlamaCppEngine
from together_llm.sampling import SamplingParams
from together_llm.serve.app import create_app
from together_llm.serve.engines import EnginePool
from together_llm.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def two_adapters(lora_home):  # noqa: F811
    """lora_home with a second adapter, `fox`, taught OTHER; and `moon-dora`, which
    llama.cpp cannot apply."""
    system_prompt = lora_home.load_config().system_prompt
    fox = lora_home.adapters_dir / "fox"
    teach(lora_home.models_dir / "smol", fox, system_prompt, answer=OTHER)
    card = json.loads((lora_home.adapters_dir / "moon" / "card.json").read_text())
    (fox / "card.json").write_text(json.dumps({**card, "name": "fox"}))
    dora = lora_home.adapters_dir / "moon-dora"
    shutil.copytree(lora_home.adapters_dir / "moon", dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    return lora_home


def messages(home) -> list[dict]:
    return [
        {"role": "system", "content": home.load_config().system_prompt},
        {"role": "user", "content": QUESTION},
    ]


def test_adapter_scale_and_lora_choose_the_adapters_of_one_request(two_adapters):
    home = two_adapters
    with TestClient(create_app(ServeSettings(home=str(home.path), ui=False))) as client:

        def chat(**fields):
            body = {"messages": messages(home), "temperature": 0, "max_tokens": 12, **fields}
            reply = client.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200, reply.text
            return reply.json()["choices"][0]

        def answer(**fields) -> str:
            return chat(**fields)["message"]["content"]

        def first_logprob(**fields) -> float:
            return chat(max_tokens=1, logprobs=True, **fields)["logprobs"]["content"][0]["logprob"]

        bare = answer(model="smol")
        assert answer(model="moon").startswith(ANSWER[:12]) and ANSWER[:12] not in bare
        assert answer(model="moon", adapter_scale=0) == bare  # strength 0: the base alone
        full, half = first_logprob(model="moon"), first_logprob(model="moon", adapter_scale=0.5)
        assert half < 2 * full < 0, (half, full)  # half strength: "Green" less sure
        # llama.cpp's `lora` list: by name, or by the number /lora-adapters gives
        assert answer(model="smol", lora=[{"id": "fox", "scale": 1}]).startswith(OTHER[:12])
        numbers = {a["name"]: a["id"] for a in client.get("/lora-adapters").json()}
        swapped = [{"id": numbers["moon"], "scale": 0}, {"id": numbers["fox"], "scale": 1.0}]
        assert answer(model="moon", lora=swapped).startswith(OTHER[:12])
        # nothing carries over to the next request
        assert answer(model="moon").startswith(ANSWER[:12])
        assert answer(model="smol") == bare
        engines = {m["id"]: m["engine"] for m in client.get("/v1/models").json()["data"]}
    assert engines["moon"] == "llama.cpp (GGUF LoRA loaded on the shared base)"
    assert engines["moon-dora"].startswith("transformers (adapter 'moon-dora' is DoRA")
    assert engines["smol"] == "llama.cpp"
    assert engines["smol-hf"].startswith("transformers (no GGUF file; `tllm export --model smol-hf")


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"model": "moon", "adapter_scale": 5}, "adapter_scale", "less than or equal to 4"),
        ({"model": "moon", "adapter_scale": -1}, "adapter_scale", "greater than or equal to 0"),
        ({"model": "smol", "adapter_scale": 0.5}, "adapter_scale", "'smol' brings none"),
        ({"lora": [{"id": "nope", "scale": 1}]}, "lora", "'nope', which is no adapter"),
        ({"lora": [{"id": 99, "scale": 1}]}, "lora", "lora id 99 is not an adapter"),
        ({"lora": [{"id": "fox", "scale": 1}, {"id": "fox", "scale": 0}]}, "lora", "twice"),
        ({"lora": [{"id": "fox"}]}, "lora.0.scale", "Field required"),
        ({"model": "moon-dora", "adapter_scale": 0.5}, "adapter_scale", "is DoRA"),
    ],
)
def test_adapter_fields_that_do_not_fit_are_400s_naming_the_field(
    two_adapters, fields, param, says
):
    home = two_adapters
    with TestClient(create_app(ServeSettings(home=str(home.path), ui=False))) as client:
        body = {"messages": messages(home), "max_tokens": 4, **fields}
        reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and says in error["message"], error


def test_idle_adapters_beyond_the_memory_bound_are_unloaded_and_come_back(two_adapters):
    home = two_adapters
    pool = EnginePool(home, home.load_config(), slots=2, adapters_mib=0)  # room for one at a time
    params = SamplingParams(temperature=0, max_tokens=12)
    try:
        assert pool.get("moon").chat(messages(home), params).run().text.startswith(ANSWER[:12])
        assert pool.get("fox").chat(messages(home), params).run().text.startswith(OTHER[:12])
        assert set(pool._loaded) == {"fox"}  # moon was unloaded to make room
        assert pool.get("moon").chat(messages(home), params).run().text.startswith(ANSWER[:12])
        assert set(pool._loaded) == {"moon"}
        assert len(pool.opened()) == 1  # one base engine all along
    finally:
        pool.close()


def test_requests_on_different_adapters_share_each_decode_and_answer_as_alone(two_adapters):
    """Per-sequence LoRA (our llama.cpp patch): the base, moon, fox and moon at half
    strength, sent at once, are decoded together, one llama_decode call a step, and each
    answers exactly as it does alone, token for token and logprob for logprob."""
    home = two_adapters
    pool = EnginePool(home, home.load_config(), slots=4)
    params = SamplingParams(temperature=0, max_tokens=12, logprobs=0)
    asks = [("smol", None), ("moon", None), ("fox", None), ("moon", 0.5)]

    def answer(ask) -> tuple[str, list]:
        generation = pool.get(ask[0], scale=ask[1]).chat(messages(home), params)
        text = generation.run().text
        return text, [token.logprob for token in generation.logprobs]

    try:
        alone = [answer(ask) for ask in asks]
        assert alone[1][0].startswith(ANSWER[:12]) and alone[2][0].startswith(OTHER[:12]), alone
        assert alone[3][1][0] < 2 * alone[1][1][0] < 0  # half strength: less sure of "Green"
        [base] = pool.opened()
        assert isinstance(base, BatchedLlamaCppEngine)
        scheduler = base.scheduler
        # hold the scheduler until all four are queued, so that they start in one step
        inside, go = threading.Event(), threading.Event()
        with ThreadPoolExecutor(len(asks) + 1) as clients:
            clients.submit(scheduler.call, lambda: (inside.set(), go.wait(60)))
            assert inside.wait(60)
            answers = clients.map(answer, asks)
            deadline = time.monotonic() + 60
            while scheduler.queue_depth < len(asks) and time.monotonic() < deadline:
                time.sleep(0.01)
            go.set()
            together = list(answers)
        for (text, logprobs), (text_alone, logprobs_alone) in zip(together, alone):
            assert text == text_alone and logprobs == pytest.approx(
                logprobs_alone, rel=1e-3, abs=1e-5
            )
        assert scheduler.stats["max_adapter_sets_per_decode"] == len(asks)
    finally:
        pool.close()
