"""The official OpenAI client against a live `tllm serve` on the bundled model."""

import json

import pytest
from openai import OpenAI

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(server):
    base, _ = server
    return OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_lists_the_base_model(client):
    assert "default" in [m.id for m in client.models.list().data]


def test_chat_streamed_text_equals_the_whole_answer(client):
    whole = client.chat.completions.create(
        model="default", messages=QUESTION, temperature=0, max_tokens=40
    )
    assert "Paris" in whole.choices[0].message.content
    stream = client.chat.completions.create(
        model="default",
        messages=QUESTION,
        temperature=0,
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[
        0
    ].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_usage_counts_the_tokenizer_tokens(client):
    from together_llm.engine.llamacpp.engine import LlamaCppEngine
    from together_llm.models.gguf_file import bundled_gguf

    engine = LlamaCppEngine(bundled_gguf())
    messages = [{"role": "system", "content": "Be brief."}, *QUESTION]
    expected = len(engine.tokenize(engine.render(messages)))
    engine.close()
    answer = client.chat.completions.create(
        model="default", messages=messages, max_tokens=7, temperature=0
    )
    assert answer.usage.prompt_tokens == expected
    assert answer.usage.completion_tokens <= 7
    assert answer.usage.total_tokens == expected + answer.usage.completion_tokens


def test_max_tokens_gives_length_and_stop_is_honoured(client):
    short = client.chat.completions.create(
        model="default", messages=QUESTION, temperature=0, max_tokens=2
    )
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 2
    stopped = client.chat.completions.create(
        model="default", messages=QUESTION, temperature=0, stop=["Paris"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert "Paris" not in stopped.choices[0].message.content


def test_seed_and_n(client):
    ask = lambda: client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Tell me a story."}],
        temperature=1.0,
        seed=5,
        max_tokens=16,
        n=2,
    )
    first, second = ask(), ask()
    assert [c.message.content for c in first.choices] == [c.message.content for c in second.choices]
    assert (
        len(first.choices) == 2
        and first.choices[0].message.content != first.choices[1].message.content
    )


def test_text_completion_keeps_whitespace_and_echoes(client):
    result = client.completions.create(
        model="default", prompt="The capital of France is", temperature=0, max_tokens=6, echo=True
    )
    text = result.choices[0].text
    assert text.startswith("The capital of France is ")  # the continuation keeps its space
    assert result.usage.completion_tokens == 6


def test_json_object_mode_gives_json_that_parses(client):
    answer = client.chat.completions.create(
        model="default",
        temperature=0,
        max_tokens=120,
        response_format={"type": "json_object"},
        messages=[
            {"role": "user", "content": "Describe Paris as JSON with keys name and country."}
        ],
    )
    assert answer.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(answer.choices[0].message.content), dict)


def test_json_schema_mode_follows_the_schema(client):
    schema = {
        "type": "object",
        "required": ["name", "population"],
        "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    }
    answer = client.chat.completions.create(
        model="default",
        temperature=0.7,
        seed=3,
        max_tokens=120,
        messages=[{"role": "user", "content": "Describe Paris."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    city = json.loads(answer.choices[0].message.content)
    assert isinstance(city["name"], str) and isinstance(city["population"], int)


def test_embeddings_put_similar_sentences_closer(client):
    texts = [
        "Paris is the capital of France.",
        "The capital of France is Paris.",
        "I like green apples.",
    ]
    result = client.embeddings.create(model="default", input=texts)
    vectors = [item.embedding for item in result.data]
    assert [item.index for item in result.data] == [0, 1, 2]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert abs(dot(vectors[0], vectors[0]) - 1) < 1e-3  # unit length
    assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2])
    assert result.usage.prompt_tokens > 0
    plain = client.embeddings.create(model="default", input=texts[0], encoding_format="float")
    assert max(abs(a - b) for a, b in zip(plain.data[0].embedding, vectors[0])) < 1e-5


def test_echo_with_logprobs_scores_the_prompt_like_lm_eval(client):
    def score(text):
        result = client.completions.create(
            model="default", prompt=text, max_tokens=1, temperature=0, echo=True, logprobs=2
        )
        lp = result.choices[0].logprobs
        assert result.choices[0].text.startswith(text)
        assert "".join(lp.tokens).startswith(text) and lp.token_logprobs[0] is None
        assert lp.text_offset[1] == len(lp.tokens[0])
        prompt_tokens = result.usage.prompt_tokens
        assert len(lp.tokens) == prompt_tokens + 1  # the prompt, then the one new token
        assert all(x < 0 for x in lp.token_logprobs[1:])
        assert all(len(top) <= 2 for top in lp.top_logprobs[1:])
        return sum(lp.token_logprobs[1:prompt_tokens])

    assert score("The capital of France is Paris") > score("The capital of France is Berlin")


def test_chat_logprobs_describe_the_answer_tokens(client):
    answer = client.chat.completions.create(
        model="default",
        messages=QUESTION,
        temperature=0,
        max_tokens=8,
        logprobs=True,
        top_logprobs=3,
    )
    content = answer.choices[0].logprobs.content
    assert len(content) == answer.usage.completion_tokens
    assert "".join(t.token for t in content).strip() == answer.choices[0].message.content
    for token in content:  # greedy: the chosen token is the likeliest one
        assert len(token.top_logprobs) == 3
        assert token.top_logprobs[0].token == token.token
        assert token.logprob == max(t.logprob for t in token.top_logprobs) <= 0


def test_streamed_logprobs_equal_the_whole_answers(client):
    whole = client.chat.completions.create(
        model="default",
        messages=QUESTION,
        temperature=0,
        max_tokens=12,
        logprobs=True,
        top_logprobs=2,
    )
    stream = client.chat.completions.create(
        model="default",
        messages=QUESTION,
        temperature=0,
        max_tokens=12,
        logprobs=True,
        top_logprobs=2,
        stream=True,
    )
    streamed = [
        t
        for c in stream
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content
    ]
    expected = whole.choices[0].logprobs.content
    assert [t.token for t in streamed] == [t.token for t in expected]
    assert [t.logprob for t in streamed] == pytest.approx([t.logprob for t in expected], abs=1e-4)

    text = "The capital of France is"
    once = client.completions.create(
        model="default", prompt=text, max_tokens=6, temperature=0, echo=True, logprobs=1
    )
    chunks = list(
        client.completions.create(
            model="default",
            prompt=text,
            max_tokens=6,
            temperature=0,
            echo=True,
            logprobs=1,
            stream=True,
        )
    )
    tokens = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    offsets = [
        o for c in chunks if c.choices[0].logprobs for o in c.choices[0].logprobs.text_offset
    ]
    assert tokens == once.choices[0].logprobs.tokens  # the echoed prompt's, then the answer's
    assert offsets == once.choices[0].logprobs.text_offset
    assert "".join(c.choices[0].text for c in chunks) == once.choices[0].text


def test_prompts_given_as_token_ids_score_like_text(client):
    from together_llm.engine.llamacpp.engine import LlamaCppEngine
    from together_llm.models.gguf_file import bundled_gguf

    engine = LlamaCppEngine(bundled_gguf())
    text = "The capital of France is Paris"
    ids = engine.tokenize(text)
    engine.close()
    by_text = client.completions.create(
        model="default", prompt=text, max_tokens=1, temperature=0, echo=True, logprobs=0
    )
    by_ids = client.completions.create(
        model="default", prompt=ids, max_tokens=1, temperature=0, echo=True, logprobs=0
    )
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.choices[0].logprobs.token_logprobs == pytest.approx(
        by_text.choices[0].logprobs.token_logprobs[:1]
        + by_text.choices[0].logprobs.token_logprobs[1:]
    )
    batch = client.completions.create(
        model="default", prompt=[ids, ids[:3]], max_tokens=2, temperature=0
    )
    assert len(batch.choices) == 2
