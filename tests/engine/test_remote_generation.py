"""A remote engine's answers have the face of any other `Generation` (no server needed)."""

from together_llm.engine.protocol import Generation
from together_llm.engine.remote_engine import RemoteEngine
from together_llm.sampling import SamplingParams


def test_a_remote_answer_is_a_generation_the_server_can_cancel():
    engine = RemoteEngine("http://127.0.0.1:9/v1", "m")
    params = SamplingParams(max_tokens=5)
    for generation in (
        engine.chat([{"role": "user", "content": "hi"}], params),
        engine.complete("hi", params),
    ):
        assert isinstance(generation, Generation)
        generation.cancel()  # what the server does when its reader goes away first
        assert generation.cancelled and generation.completion is None
        assert generation.logprobs == []
