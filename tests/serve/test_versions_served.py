"""A running server answers with each version `tllm improve` adopts and with a rollback,
without a restart: the first adoption makes the adapter active (assistant.yaml changes),
later ones replace its weights. On the tiny LLaMA of test_adapter_gguf.py, whose adapters
`moon` and `fox` give two different answers to one question."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.export.test_adapter_gguf import ANSWER, OTHER, lora_home  # noqa: F401
from tests.export.test_export import tiny_smol  # noqa: F401  (lora_home's fixture)
from tests.serve.test_adapter_strength import messages, two_adapters  # noqa: F401
from together_llm.adapters.card import Improved
from together_llm.learn.versions import Versions, make_active
from together_llm.serve.app import create_app
from together_llm.serve.settings import ServeSettings


def test_the_server_answers_with_every_adopted_version_and_rollback(two_adapters):  # noqa: F811
    home = two_adapters
    with TestClient(create_app(ServeSettings(home=str(home.path), ui=False))) as client:

        def answer() -> str:
            body = {"messages": messages(home), "temperature": 0, "max_tokens": 12}
            reply = client.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200, reply.text
            return reply.json()["choices"][0]["message"]["content"]

        bare = answer()
        assert not bare.startswith((ANSWER[:12], OTHER[:12]))
        versions = Versions(home, "me")
        versions.adopt(home.adapters_dir / "moon", Improved(memories=["1"], new=["1"]))
        make_active(home, "me")
        assert answer().startswith(ANSWER[:12])  # the first version, once adopted
        versions.adopt(home.adapters_dir / "fox", Improved(parent=1, memories=["1", "2"]))
        assert answer().startswith(OTHER[:12])  # the next one, same name, new weights
        versions.rollback(1)
        assert answer().startswith(ANSWER[:12])
        assert client.get("/v1/models").json()["data"]  # still serving everything else
