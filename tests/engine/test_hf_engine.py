"""The transformers engine on tiny models: streaming, stops, seeds, seq2seq, and a PEFT
adapter that changes the answer."""

import pytest

from tests.tiny_models import make_tiny_model
from together_llm.engine.hf_engine import HFEngine
from together_llm.errors import TllmError
from together_llm.sampling import SamplingParams

HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return make_tiny_model("llama", tmp_path_factory.mktemp("llama") / "m", "causal-lm")


def test_stream_pieces_add_up_to_the_completion(llama_dir):
    engine = HFEngine(llama_dir)
    generation = engine.chat(HELLO, SamplingParams(temperature=0, max_tokens=12))
    pieces = list(generation)
    completion = generation.completion
    assert "".join(pieces) == completion.text
    assert completion.usage.prompt_tokens == len(engine.tokenize(engine.render(HELLO)))
    assert 1 <= completion.usage.completion_tokens <= 12
    assert completion.finish_reason in ("stop", "length")


def test_seed_repeats_sampling_and_greedy_is_deterministic(llama_dir):
    engine = HFEngine(llama_dir)
    sample = lambda seed: (
        engine.chat(
            HELLO, SamplingParams(temperature=1.0, top_k=0, top_p=1.0, max_tokens=16, seed=seed)
        )
        .run()
        .text
    )
    assert sample(3) == sample(3)
    assert len({sample(s) for s in range(4)}) > 1
    greedy = lambda: engine.chat(HELLO, SamplingParams(temperature=0, max_tokens=16)).run().text
    assert greedy() == greedy()


def test_stop_sequence_cuts_the_answer(llama_dir):
    engine = HFEngine(llama_dir)
    full = engine.chat(HELLO, SamplingParams(temperature=0, max_tokens=16)).run().text
    words = full.split()
    if len(words) < 2:
        pytest.skip("the random model answered with fewer than two words")
    stop = words[1]
    cut = engine.chat(HELLO, SamplingParams(temperature=0, max_tokens=16, stop=[stop])).run()
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert full.startswith(cut.text)


def test_seq2seq_model_generates(tmp_path):
    engine = HFEngine(make_tiny_model("t5", tmp_path / "t5", "seq2seq"))
    completion = engine.chat(HELLO, SamplingParams(temperature=0, max_tokens=5)).run()
    assert completion.usage.completion_tokens >= 1


def test_encoder_is_refused_for_generation(tmp_path):
    with pytest.raises(TllmError, match="is an encoder"):
        HFEngine(make_tiny_model("bert", tmp_path / "bert", "classify"))


def test_an_adapter_changes_the_answer(llama_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    with torch.no_grad():  # a strong random update, so the adapter visibly matters
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0)
    peft_model.save_pretrained(tmp_path / "adapter")

    params = SamplingParams(temperature=0, max_tokens=12)
    plain = HFEngine(llama_dir).chat(HELLO, params).run()
    adapted = HFEngine(llama_dir, adapters=[tmp_path / "adapter"]).chat(HELLO, params).run()
    assert adapted.text != plain.text


def test_closing_a_stream_early_frees_the_engine(llama_dir):
    engine = HFEngine(llama_dir)
    params = SamplingParams(temperature=0, max_tokens=40)
    stream = iter(engine.chat(HELLO, params))
    next(stream, None)
    stream.close()  # the reader went away after the first piece
    completion = engine.chat(HELLO, SamplingParams(temperature=0, max_tokens=5)).run()
    assert completion.usage.completion_tokens >= 1  # the next generation runs to the end
    assert engine._lock.acquire(timeout=5)
    engine._lock.release()


def test_max_tokens_ends_with_length(llama_dir):
    engine = HFEngine(llama_dir)
    prompt = "hello " * 3
    completion = engine.complete(prompt, SamplingParams(temperature=0, max_tokens=3)).run()
    if completion.finish_reason == "stop":
        pytest.skip("the random model ended early")
    assert completion.finish_reason == "length" and completion.usage.completion_tokens == 3
