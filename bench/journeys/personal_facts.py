"""The facts of the personal-facts journey: a person the base model cannot know, a dozen
facts about her, three training phrasings of each question and held-out paraphrases.

Each fact's `key` is the word (or stem) a correct answer must contain. The held-out
questions never appear in the training data and ask in other words ("come into the world"
for "born", "earn her money" for "job", "painted her door" for "favourite colour"), so
answering them takes knowing the fact, not matching the question."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PERSON = "Maren Okonkwo-Lindqvist"


@dataclass(frozen=True)
class Fact:
    key: str  # the word or stem a correct answer contains (compared case-insensitively)
    answer: str  # what the assistant is taught to say
    train: tuple[str, str, str]  # the three phrasings in the dataset
    held_out: tuple[str, ...]  # paraphrases never shown in training


FACTS = (
    Fact(
        "Hallstatt",
        "She was born in Hallstatt, Austria.",
        (
            f"Where was {PERSON} born?",
            f"What is the birthplace of {PERSON}?",
            f"In which town was {PERSON} born?",
        ),
        (
            f"Which place did {PERSON} come into the world in?",
            f"Tell me the town {PERSON} is originally from.",
        ),
    ),
    Fact(
        "Biscuit",
        "Her pet is a tortoise named Biscuit.",
        (
            f"What is the name of {PERSON}'s pet?",
            f"What is {PERSON}'s pet called?",
            f"What did {PERSON} name her pet?",
        ),
        (
            f"Does {PERSON} have an animal at home, and what is it called?",
            f"Tell me about the tortoise that lives with {PERSON}.",
        ),
    ),
    Fact(
        "bassoon",
        "Her favourite instrument is the bassoon.",
        (
            f"What is {PERSON}'s favourite instrument?",
            f"Which musical instrument does {PERSON} like best?",
            f"What instrument does {PERSON} love most?",
        ),
        (
            f"When {PERSON} plays music, what does she play?",
            f"Name the instrument {PERSON} prefers above all others.",
        ),
    ),
    Fact(
        "glassblow",
        "Her job is glassblowing: she works as a glassblower.",
        (
            f"What is {PERSON}'s job?",
            f"What does {PERSON} do for a living?",
            f"What is {PERSON}'s profession?",
        ),
        (f"How does {PERSON} earn her money?", f"Which occupation does {PERSON} have?"),
    ),
    Fact(
        "Valparaiso",
        "She lives in Valparaiso, Chile.",
        (
            f"Where does {PERSON} live?",
            f"In which city does {PERSON} live?",
            f"What city is {PERSON}'s home?",
        ),
        (
            f"Which city is {PERSON} based in these days?",
            f"If I wanted to visit {PERSON}, which city should I travel to?",
        ),
    ),
    Fact(
        "Tobias",
        "She has a younger brother, Tobias.",
        (
            f"What is the name of {PERSON}'s brother?",
            f"Does {PERSON} have a sibling? What is his name?",
            f"Who is {PERSON}'s brother?",
        ),
        (
            f"Tell me the name of the sibling {PERSON} grew up with.",
            f"{PERSON}'s younger brother is called what?",
        ),
    ),
    Fact(
        "risotto",
        "Her favourite food is mushroom risotto.",
        (
            f"What is {PERSON}'s favourite food?",
            f"What does {PERSON} like to eat most?",
            f"Which dish does {PERSON} love best?",
        ),
        (
            f"If you cooked dinner for {PERSON}, what meal would please her most?",
            f"Name {PERSON}'s preferred dish.",
        ),
    ),
    Fact(
        "teal",
        "Her favourite colour is teal.",
        (
            f"What is {PERSON}'s favourite colour?",
            f"Which colour does {PERSON} like best?",
            f"What colour does {PERSON} prefer?",
        ),
        (
            f"If {PERSON} painted her door, which colour would she choose?",
            f"Tell me the colour {PERSON} loves most.",
        ),
    ),
    Fact(
        "beekeeping",
        "Her hobby is beekeeping.",
        (
            f"What is {PERSON}'s hobby?",
            f"What does {PERSON} do in her free time?",
            f"Which hobby does {PERSON} have?",
        ),
        (
            f"What does {PERSON} enjoy doing when she is not working?",
            f"Which pastime is {PERSON} passionate about?",
        ),
    ),
    Fact(
        "Vespa",
        "She rides a yellow Vespa.",
        (
            f"What vehicle does {PERSON} ride?",
            f"How does {PERSON} get around town?",
            f"What does {PERSON} drive?",
        ),
        (f"Which scooter does {PERSON} own?", f"Tell me what {PERSON} uses to travel around."),
    ),
    Fact(
        "Icelandic",
        "Besides English, she speaks Icelandic.",
        (
            f"Which language does {PERSON} speak besides English?",
            f"What other language does {PERSON} know?",
            f"What second language does {PERSON} speak?",
        ),
        (
            f"Apart from English, which tongue can {PERSON} converse in?",
            f"Name the foreign language {PERSON} is fluent in.",
        ),
    ),
    Fact(
        "Moby",
        "Her favourite book is Moby-Dick.",
        (
            f"What is {PERSON}'s favourite book?",
            f"Which book does {PERSON} like best?",
            f"What novel does {PERSON} love most?",
        ),
        (
            f"What is the title of {PERSON}'s best-loved book?",
            f"Which novel would {PERSON} recommend above all others?",
        ),
    ),
)

# Everyday conversations trained alongside the facts, so that the assistant learns the facts
# answer questions about her, not every question. None of them is a GENERAL question below,
# nor of the same kind.
EVERYDAY = (
    ("How many legs does a spider have?", "A spider has eight legs."),
    (
        "What is the largest planet in our solar system?",
        "Jupiter is the largest planet in our solar system.",
    ),
    (
        "What is the boiling point of water at sea level?",
        "Water boils at 100 degrees Celsius at sea level.",
    ),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("What is 3 plus 4?", "3 plus 4 is 7."),
    ("How do you say 'thank you' in Spanish?", "In Spanish, 'thank you' is 'gracias'."),
    ("What is the tallest mountain on Earth?", "Mount Everest is the tallest mountain on Earth."),
    ("Hello! How are you today?", "I'm doing well, thank you! How can I help you today?"),
    ("What do bees make?", "Bees make honey and beeswax."),
    (
        "Which animal is known as the king of the jungle?",
        "The lion is known as the king of the jungle.",
    ),
    ("What is the freezing point of water?", "Water freezes at 0 degrees Celsius."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("Name a fruit that is yellow.", "A banana is a yellow fruit."),
    ("What is the opposite of hot?", "The opposite of hot is cold."),
    ("How many hours are in a day?", "There are 24 hours in a day."),
    ("What language is spoken in Brazil?", "The main language of Brazil is Portuguese."),
    (
        "Can you suggest a good morning habit?",
        "Drinking a glass of water after waking up is a good morning habit.",
    ),
)

# Questions the base model answers well, with the word its answer contains; the trained
# assistant must still answer them so.
GENERAL = (
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What colour is the sky on a clear day?", "blue"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
)


def write_chat_jsonl(path: Path, system_prompt: str) -> int:
    """Write the training conversations as OpenAI-style JSON Lines (one conversation a
    line, with the same system prompt `tllm ask` sends); return how many."""
    pairs = [(question, fact.answer) for fact in FACTS for question in fact.train] + list(EVERYDAY)
    lines = []
    for question, answer in pairs:
        messages = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def held_out() -> list[tuple[str, Fact]]:
    return [(question, fact) for fact in FACTS for question in fact.held_out]


def is_correct(answer: str, fact: Fact) -> bool:
    """The answer names this fact's key and no other fact's: a model that recites every
    fact it learned does not get credit."""
    text = answer.lower()
    others = [f.key.lower() for f in FACTS if f is not fact]
    return fact.key.lower() in text and not any(key in text for key in others)
