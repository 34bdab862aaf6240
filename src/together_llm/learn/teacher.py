"""A teacher's own phrasings of the questions a memory answers, checked.

The teacher is the home's model (`default`), another registered model or any
OpenAI-compatible endpoint (data/generate/teacher.py resolves it, as Self-Instruct's).
Shown a few statements with their questions, it writes three more questions for the
memory, twice, at two seeds. Each is checked (questions.question_problem: a question about
the person that shares a word with the memory and does not give the answer away), then the
teacher answers it from the memory alone; a question whose answer does not hold the
memory's key content is dropped: the memory does not answer it, or not clearly.

The row the assistant learns keeps the memory itself, said back, as the answer: a teacher's
answer can hold the key words and still be wrong ("Rex is a cat"), the memory cannot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..sampling import SamplingParams
from .questions import holds, key_content, question_problem, template_questions

Ask = Callable[[str, int | None], str]  # (prompt, seed; None: greedy) -> continuation

SHOWN = (
    (
        "My cat is called Tom.",
        ("What is my cat's name?", "What did I name my cat?", "Do you know what my cat is called?"),
    ),
    (
        "I was born in Lisbon.",
        ("Where was I born?", "Which city am I from?", "What is my birthplace?"),
    ),
    (
        "My favourite food is lasagne.",
        (
            "What food do I like best?",
            "What is my favourite thing to eat?",
            "Which dish do I love most?",
        ),
    ),
)
SEEDS = (1, 2)


def questions_prompt(memory: str) -> str:
    shown = "".join(
        f"Statement: {statement}\nQuestions:\n" + "".join(f"- {q}\n" for q in questions) + "\n"
        for statement, questions in SHOWN
    )
    return (
        "Write three different questions that the statement answers.\n\n"
        f"{shown}Statement: {memory}\nQuestions:\n-"
    )


def answer_prompt(memory: str, question: str) -> str:
    return (
        "Answer the question from the statement, in one short sentence.\n\n"
        "Statement: My cat is called Tom.\nQuestion: What is my cat's name?\n"
        "Answer: Your cat is called Tom.\n\n"
        f"Statement: {memory}\nQuestion: {question}\nAnswer:"
    )


def parse_questions(text: str) -> list[str]:
    lines = ("-" + text).splitlines()
    return [line.lstrip("-*0123456789. ").strip() for line in lines if line.strip(" -")]


def teacher_questions(ask: Ask, memory: str, known: list[str]) -> tuple[list[str], Counter]:
    """The teacher's questions for `memory` that pass every check, and why the others were
    dropped (reason -> count)."""
    kept: list[str] = []
    dropped: Counter = Counter()
    for seed in SEEDS:
        for question in parse_questions(ask(questions_prompt(memory), seed)):
            problem = question_problem(question, memory, [*known, *kept])
            if problem is None:
                answer = ask(answer_prompt(memory, question), None)
                if not holds(answer, key_content(memory, question)):
                    problem = "its answer does not hold the memory"
            if problem:
                dropped[problem] += 1
            else:
                kept.append(question)
    return kept, dropped


def memory_questions(
    memory: str, ask: Ask | None, source: str
) -> tuple[list[tuple[str, str]], dict]:
    """Every question `memory` is taught and tested with, as (question, where from) pairs,
    and the teacher's dropped questions by reason. `ask` None: the patterns alone."""
    questions = [(q, "pattern") for q in template_questions(memory)]
    if ask is None:
        return questions, {}
    extra, dropped = teacher_questions(ask, memory, [q for q, _ in questions])
    return questions + [(q, source) for q in extra], dict(dropped)


def engine_ask(engine) -> Ask:
    """The teacher's `ask` on an open engine: sampled at `seed`, greedy when it is None."""

    def ask(prompt: str, seed: int | None) -> str:
        params = SamplingParams(
            temperature=0.0 if seed is None else 0.7,
            top_p=0.95,
            max_tokens=60,
            stop=["\n\n", "Statement:"],
            seed=seed,
            repetition_penalty=1.1,
        )
        return engine.complete(prompt, params).run().text

    return ask


def open_ask(home, teacher: str, api_key: str | None = None) -> tuple[Ask, str, Callable[[], None]]:
    """(ask, the teacher's label for the memory's rows, close) for `--teacher`."""
    # Self-Instruct's teacher module brings numpy (its similarity pool); the server imports
    # this module and must not load numpy before llama.cpp opens its model.
    from ..data.generate.teacher import open_teacher, teacher_identity, teacher_label

    identity = teacher_identity(home, teacher, None, api_key)
    engine = open_teacher(home, teacher, identity, api_key)
    return engine_ask(engine), teacher_label(teacher, identity), engine.close
