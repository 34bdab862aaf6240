"""Continuous batching on the llama.cpp engine, with the bundled model: the same tokens as
`LlamaCppEngine`, concurrent requests decoded in shared steps without changing their
answers, cancellation that frees a slot, grammars, and the protocol's finish reasons."""

import threading
import time

import pytest

from together_llm.engine.llamacpp.batch import BatchedLlamaCppEngine
from together_llm.engine.llamacpp.engine import LlamaCppEngine
from together_llm.errors import TllmError
from together_llm.models.gguf_file import bundled_gguf
from together_llm.sampling import SamplingParams

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Write a short story about a cat.",
    "Explain how rain forms.",
    "List five fruits and describe each.",
    "Why is the sea salty?",
]
GREEDY = SamplingParams(temperature=0, max_tokens=24)
SAMPLED = SamplingParams(
    temperature=0.9,
    top_k=30,
    top_p=0.9,
    repetition_penalty=1.1,
    presence_penalty=0.3,
    frequency_penalty=0.2,
    max_tokens=24,
    seed=7,
)


def ask(question):
    return [{"role": "user", "content": question}]


@pytest.fixture(scope="module")
def plain():
    engine = LlamaCppEngine(bundled_gguf(), context_length=1024)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def batched():
    engine = BatchedLlamaCppEngine(bundled_gguf(), context_length=1024, slots=4)
    yield engine
    engine.close()


def token_ids(engine, question, params):
    ids = engine.tokenize(engine.render(ask(question)))
    return list(engine._token_ids(ids, params, params.max_tokens))


def test_greedy_and_seeded_requests_give_llamacpp_engines_tokens(plain, batched):
    assert batched.context_length == 1024 <= batched.scheduler.n_ctx_seq
    for params in (GREEDY, SAMPLED):
        expected = token_ids(plain, QUESTIONS[0], params)
        assert len(expected) == params.max_tokens
        assert token_ids(batched, QUESTIONS[0], params) == expected
        # again: now the slot's cached prompt is reused, and the answer must not change
        assert token_ids(batched, QUESTIONS[0], params) == expected
    assert batched.scheduler.stats["prefix_reused"] > 0


def test_concurrent_requests_share_decode_calls_and_keep_their_answers(batched):
    alone = [batched.chat(ask(q), GREEDY).run().text for q in QUESTIONS]
    before = dict(batched.scheduler.stats)
    answers = [None] * len(QUESTIONS)
    start = threading.Barrier(len(QUESTIONS))

    def client(i):
        generation = batched.chat(ask(QUESTIONS[i]), GREEDY)  # rendered and tokenized here
        start.wait()
        answers[i] = "".join(generation)  # submitted here, all four within a few ms
        assert answers[i] == generation.completion.text

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert answers == alone
    stats = batched.scheduler.stats
    calls = stats["decode_calls"] - before["decode_calls"]
    sampled = stats["tokens_sampled"] - before["tokens_sampled"]
    assert stats["max_seqs_per_decode"] >= 2  # all 4 unless a thread was late by a whole answer
    assert calls < sampled / 2  # one call served several requests' tokens


def test_closing_a_generation_frees_its_only_slot():
    engine = BatchedLlamaCppEngine(bundled_gguf(), context_length=512, slots=1)
    try:
        second_alone = engine.chat(ask(QUESTIONS[1]), GREEDY).run().text
        first = iter(engine.chat(ask(QUESTIONS[0]), SamplingParams(temperature=0, max_tokens=400)))
        next(first), next(first)
        result = {}
        waiter = threading.Thread(
            target=lambda: result.update(text=engine.chat(ask(QUESTIONS[1]), GREEDY).run().text)
        )
        waiter.start()
        deadline = time.monotonic() + 20
        while engine.scheduler.queue_depth == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert "text" not in result and engine.scheduler.queue_depth == 1  # waiting for the slot
        first.close()
        waiter.join(timeout=30)
        assert result.get("text") == second_alone
        assert engine.scheduler.busy_slots == 0 and engine.scheduler.queue_depth == 0
        running = iter(
            engine.chat(ask(QUESTIONS[2]), SamplingParams(temperature=0, max_tokens=400))
        )
        next(running)
    finally:
        engine.close()
    with pytest.raises(TllmError, match="closed"):  # a request in flight ends, it does not hang
        list(running)


def test_a_cancelled_request_leaves_the_queue_without_waiting_for_a_slot():
    engine = BatchedLlamaCppEngine(bundled_gguf(), context_length=512, slots=1)
    try:
        first = iter(engine.chat(ask(QUESTIONS[0]), SamplingParams(temperature=0, max_tokens=400)))
        next(first)  # holds the only slot
        queued = engine.chat(ask(QUESTIONS[1]), GREEDY)
        pieces = []
        waiter = threading.Thread(target=lambda: pieces.extend(queued))
        waiter.start()
        deadline = time.monotonic() + 20
        while engine.scheduler.queue_depth == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.scheduler.queue_depth == 1
        queued.cancel()  # from another thread, as the server does when its client hangs up
        waiter.join(timeout=10)
        assert not waiter.is_alive() and pieces == [] and queued.completion is None
        assert engine.scheduler.queue_depth == 0 and engine.scheduler.busy_slots == 1
        assert next(first)  # the running request was not disturbed
        first.close()
    finally:
        engine.close()


def test_a_grammar_constrains_the_answer(plain, batched):
    grammar = 'root ::= "yes" | "no"'
    for params in (
        SamplingParams(temperature=0, max_tokens=8, grammar=grammar),
        SamplingParams(temperature=1.0, max_tokens=8, grammar=grammar, seed=3),
    ):
        completion = batched.chat(ask("Is the sky green? Explain at length."), params).run()
        assert completion.text in ("yes", "no") and completion.finish_reason == "stop"
        assert (
            completion.text
            == plain.chat(ask("Is the sky green? Explain at length."), params).run().text
        )
    with pytest.raises(TllmError, match="grammar does not parse"):
        batched.chat(ask("hi"), SamplingParams(grammar="root ::= (")).run()
    with pytest.raises(TllmError, match="grammar"):
        SamplingParams(grammar=" ")


def test_max_tokens_stop_sequences_and_finish_reasons(batched):
    prompt_tokens = len(batched.tokenize(batched.render(ask(QUESTIONS[0]))))
    short = batched.chat(ask(QUESTIONS[0]), SamplingParams(temperature=0, max_tokens=5)).run()
    assert short.finish_reason == "length" and short.usage.completion_tokens == 5
    assert short.usage.prompt_tokens == prompt_tokens
    full = batched.chat(ask(QUESTIONS[0]), SamplingParams(temperature=0, max_tokens=40)).run()
    word = full.text.split()[3]
    stopped = batched.chat(
        ask(QUESTIONS[0]), SamplingParams(temperature=0, max_tokens=40, stop=[word])
    ).run()
    assert stopped.finish_reason == "stop" and word not in stopped.text
    assert full.text.startswith(stopped.text)
    ended = batched.chat(ask("What is 2+2?"), SamplingParams(temperature=0, max_tokens=60)).run()
    assert ended.finish_reason == "stop" and ended.usage.completion_tokens < 60
    assert batched.scheduler.busy_slots == 0
