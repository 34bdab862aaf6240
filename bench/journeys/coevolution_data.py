"""The co-evolution journey's data and scoring, shared by tests/e2e/test_coevolution.py and
bench/together.py: four topics the bundled model cannot know, one a peer, five facts each.

Each fact has three training phrasings and two held-out paraphrases (never trained on, in
other words), as in the personal-facts journey, whose `Fact`, its first five facts (topic
"maren") and its everyday conversations this reuses. Each peer's dataset holds its own
topic's facts and a quarter of the everyday conversations; the union of the four is what a
central trainer would see. A held-out answer counts when it names its fact's key and no
other fact's key (`is_correct`).

`answer_all` asks every held-out question of several adapters with one loaded base model,
greedy, many questions a batch, with the prompt `tllm ask` sends (the home's system prompt
through the model's chat template); the test checks that `tllm ask` gives the same answer.
"""

from __future__ import annotations

import json
from pathlib import Path

from .personal_facts import EVERYDAY, Fact
from .personal_facts import FACTS as MAREN

VILLAGE, COMPANY, BAND = "Quillonby", "Fernwick Robotics", "The Velvet Lanterns"

TOPICS: dict[str, tuple[Fact, ...]] = {
    "maren": MAREN[:5],
    "village": (
        Fact(
            "Wendle",
            f"The river that runs through {VILLAGE} is the Wendle.",
            (
                f"Which river flows through {VILLAGE}?",
                f"What is the name of the river in {VILLAGE}?",
                f"What river runs through the village of {VILLAGE}?",
            ),
            (
                f"If you went fishing in {VILLAGE}, which stream would you be standing in?",
                f"Name the waterway that passes through {VILLAGE}.",
            ),
        ),
        Fact(
            "regatta",
            f"{VILLAGE} is famous for its pumpkin regatta.",
            (
                f"What is {VILLAGE} famous for?",
                f"What is {VILLAGE} best known for?",
                f"Which event made {VILLAGE} famous?",
            ),
            (
                f"Why do tourists travel to {VILLAGE} every autumn?",
                f"Tell me what draws crowds of visitors to {VILLAGE}.",
            ),
        ),
        Fact(
            "Thistlewood",
            f"The mayor of {VILLAGE} is Esperanza Thistlewood.",
            (
                f"Who is the mayor of {VILLAGE}?",
                f"What is the name of {VILLAGE}'s mayor?",
                f"Who was elected mayor of {VILLAGE}?",
            ),
            (
                f"Who governs the village of {VILLAGE}?",
                f"Tell me who leads the council of {VILLAGE}.",
            ),
        ),
        Fact(
            "lighthouse",
            f"{VILLAGE}'s landmark is a crooked copper lighthouse.",
            (
                f"What is {VILLAGE}'s famous landmark?",
                f"Which landmark stands in {VILLAGE}?",
                f"What is the best-known building in {VILLAGE}?",
            ),
            (
                f"What should I photograph when I visit {VILLAGE}?",
                f"Which structure appears on every postcard from {VILLAGE}?",
            ),
        ),
        Fact(
            "gooseberry",
            f"{VILLAGE}'s traditional dessert is gooseberry tart.",
            (
                f"What is the traditional dessert of {VILLAGE}?",
                f"Which sweet dish is {VILLAGE} known for?",
                f"What dessert do people eat in {VILLAGE}?",
            ),
            (
                f"What pudding would a baker in {VILLAGE} serve you?",
                f"Name the treat that {VILLAGE}'s cafés are proud of.",
            ),
        ),
    ),
    "company": (
        Fact(
            "Ottoline",
            f"{COMPANY} was founded by Ottoline Baptiste.",
            (
                f"Who founded {COMPANY}?",
                f"Who is the founder of {COMPANY}?",
                f"Which person started {COMPANY}?",
            ),
            (
                f"Whose idea was it to create {COMPANY}?",
                f"Tell me the name of the woman behind the creation of {COMPANY}.",
            ),
        ),
        Fact(
            "Troms",
            f"{COMPANY} has its headquarters in Tromsø, Norway.",
            (
                f"Where is {COMPANY} headquartered?",
                f"In which city are the headquarters of {COMPANY}?",
                f"Where is the head office of {COMPANY}?",
            ),
            (
                f"If I wanted to visit {COMPANY}'s main office, where would I go?",
                f"Which town is {COMPANY} run from?",
            ),
        ),
        Fact(
            "lawnmower",
            f"{COMPANY} makes robotic lawnmowers.",
            (
                f"What does {COMPANY} make?",
                f"What product does {COMPANY} sell?",
                f"What are {COMPANY}'s products?",
            ),
            (
                f"What kind of machine would I buy from {COMPANY}?",
                f"Describe the goods {COMPANY} manufactures.",
            ),
        ),
        Fact(
            "heron",
            f"The mascot of {COMPANY} is a grey heron.",
            (
                f"What is the mascot of {COMPANY}?",
                f"Which animal is {COMPANY}'s mascot?",
                f"What mascot does {COMPANY} have?",
            ),
            (
                f"Which bird represents {COMPANY} at trade fairs?",
                f"Tell me about the creature that stands for {COMPANY}.",
            ),
        ),
        Fact(
            "octagon",
            f"The logo of {COMPANY} is an orange octagon.",
            (
                f"What is the logo of {COMPANY}?",
                f"What does {COMPANY}'s logo look like?",
                f"Describe the logo of {COMPANY}.",
            ),
            (
                f"Which shape is printed on every {COMPANY} product?",
                f"How would I recognise {COMPANY}'s emblem?",
            ),
        ),
    ),
    "band": (
        Fact(
            "Ingrid",
            f"The lead singer of {BAND} is Ingrid Salazar.",
            (
                f"Who is the lead singer of {BAND}?",
                f"Who sings in {BAND}?",
                f"What is the name of {BAND}'s singer?",
            ),
            (
                f"Whose voice do we hear on the records of {BAND}?",
                f"Tell me who fronts {BAND} on stage.",
            ),
        ),
        Fact(
            "Saltwater",
            f"The first album of {BAND} is Saltwater Psalms.",
            (
                f"What is the first album of {BAND}?",
                f"What was {BAND}'s debut album called?",
                f"Which album did {BAND} release first?",
            ),
            (
                f"Name the record that started the career of {BAND}.",
                f"What was the title of the earliest LP by {BAND}?",
            ),
        ),
        Fact(
            "polka",
            f"{BAND} play polka.",
            (
                f"What kind of music do {BAND} play?",
                f"What genre is {BAND}?",
                f"Which style of music are {BAND} known for?",
            ),
            (
                f"If I went to a concert by {BAND}, what would I hear?",
                f"How would you describe the sound of {BAND}?",
            ),
        ),
        Fact(
            "Dunedin",
            f"{BAND} come from Dunedin, New Zealand.",
            (
                f"Where do {BAND} come from?",
                f"What is the hometown of {BAND}?",
                f"In which city was {BAND} formed?",
            ),
            (
                f"Which town did the members of {BAND} grow up in?",
                f"Where did {BAND} start out as a band?",
            ),
        ),
        Fact(
            "Marmalade",
            f"The biggest hit of {BAND} is Marmalade Moon.",
            (
                f"What is {BAND}'s biggest hit?",
                f"What is the most famous song by {BAND}?",
                f"Which song of {BAND} is the most popular?",
            ),
            (
                f"Which tune by {BAND} does everyone sing along to?",
                f"Name the track by {BAND} that topped the charts.",
            ),
        ),
    ),
}
ALL_FACTS: tuple[Fact, ...] = tuple(fact for facts in TOPICS.values() for fact in facts)


def training_pairs(topic: str) -> list[tuple[str, str]]:
    """(question, answer) rows of one peer: its topic's facts, three phrasings each, and its
    quarter of the everyday conversations (each conversation goes to exactly one peer)."""
    index = list(TOPICS).index(topic)
    everyday = [pair for i, pair in enumerate(EVERYDAY) if i % len(TOPICS) == index]
    return [(q, fact.answer) for fact in TOPICS[topic] for q in fact.train] + everyday


def held_out(topics=None) -> list[tuple[str, Fact]]:
    """(paraphrase, fact) of every fact of `topics` (default: all), never trained on."""
    return [
        (q, fact) for topic in (topics or TOPICS) for fact in TOPICS[topic] for q in fact.held_out
    ]


def chat_row(question: str, answer: str, system_prompt: str) -> dict:
    return {
        "messages": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def write_jsonl(path: Path, pairs: list[tuple[str, str]], system_prompt: str) -> Path:
    """OpenAI-style chat JSON Lines (what `tllm data import --format openai` reads)."""
    lines = [json.dumps(chat_row(q, a, system_prompt), ensure_ascii=False) for q, a in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def is_correct(answer: str, fact: Fact) -> bool:
    """The answer names this fact's key and no other fact's key, of any topic."""
    text = answer.lower()
    return fact.key.lower() in text and not any(
        other.key.lower() in text for other in ALL_FACTS if other is not fact
    )


def score(answers: list[str], probes: list[tuple[str, Fact]]) -> dict[str, int]:
    """Right answers per topic and in all ("all")."""
    topic_of = {fact: topic for topic, facts in TOPICS.items() for fact in facts}
    right = {topic: 0 for topic in TOPICS}
    for answer, (_, fact) in zip(answers, probes):
        right[topic_of[fact]] += is_correct(answer, fact)
    return {**right, "all": sum(right.values())}


def answer_all(
    hf_dir: Path,
    adapters: dict[str, Path],
    questions: list[str],
    system_prompt: str,
    max_tokens: int = 32,
    batch: int = 20,
) -> dict[str, list[str]]:
    """Greedy answers of each adapter (label -> adapter folder) to every question: one base
    model with all adapters loaded, prompts rendered as `tllm ask` renders them, left-padded
    batches. Returns label -> answers."""
    import torch
    from peft import PeftModel

    from together_llm.engine.hf_engine import HFEngine

    engine = HFEngine(Path(hf_dir))  # the tokenizer, chat template and end tokens of `ask`
    tokenizer = engine.tokenizer
    prompts = [
        engine.tokenize(
            engine.render(
                [{"role": "system", "content": system_prompt}, {"role": "user", "content": q}]
            )
        )
        for q in questions
    ]
    labels = list(adapters)
    model = PeftModel.from_pretrained(
        engine.model, str(adapters[labels[0]]), adapter_name=labels[0]
    )
    for label in labels[1:]:
        model.load_adapter(str(adapters[label]), adapter_name=label)
    model.eval()
    ends = [i for i in range(len(tokenizer)) if engine.is_end(i)]  # the engine's end tokens
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ends[0]
    found = {}
    for label in labels:
        model.set_adapter(label)
        texts = []
        for start in range(0, len(prompts), batch):
            chunk = prompts[start : start + batch]
            width = max(map(len, chunk))
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_tokens,
                    do_sample=False,
                    pad_token_id=pad,
                    eos_token_id=ends,
                )
            texts += [
                tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out
            ]
        found[label] = texts
    return found
