"""What the assistant knew before it learned anything from its person, kept.

Two sets of everyday questions, answered once by the base model alone (greedy) and recorded
in `learn/general.json`:
- REPLAY: the base's own answers become rows of every training mix, so that learning facts
  about the person does not pull the model away from how it answered everything else;
- PROBES: never trained on; a version is scored on the probes whose recorded base answer
  holds the expected word. A candidate that answers fewer of them than the current version
  has lost general skill.

The recording is redone when the base model, the system prompt or these questions change
(what they were is kept beside the answers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from ..engine.choice import open_engine
from ..home import Home
from ..models.registry import get_model
from .scoring import ANSWER_TOKENS, answer_all, holds_word

# Everyday questions of many shapes, some shaped like what a person tells the assistant
# about themselves (where someone was born, what something is called, someone's job), so
# that "Where was I born?" is learned apart from "Where was Mozart born?".
REPLAY = (
    "How many legs does a spider have?",
    "Who painted the Mona Lisa?",
    "What do bees make?",
    "What is the opposite of hot?",
    "How many hours are in a day?",
    "Hello! How are you today?",
    "Can you suggest a good morning habit?",
    "What is the chemical symbol for gold?",
    "Name a fruit that is yellow.",
    "What is the capital of Spain?",
    "What is the capital of Germany?",
    "Where is the Eiffel Tower?",
    "Where was Mozart born?",
    "What is the name of the longest river in Africa?",
    "What do doctors do?",
    "What instrument did Jimi Hendrix play?",
    "What is a beagle?",
    "Tell me about cats.",
    "What is your name?",
    "Which language is spoken in Brazil?",
    "How do I boil an egg?",
    "What is 3 plus 4?",
    "Give me a tip for sleeping well.",
    "What colour are bananas?",
    "What is a group of lions called?",
    "What is a young cow called?",
    "What is the name of our galaxy?",
    "What do you call a female horse?",
)
# Questions with one plain answer that the base model gives in one plain word. Answers that
# a small model words many ways ("What is H2O?": water, or hydrogen and oxygen) or gets
# right only by a hair (any update flips "the capital of Russia" to St. Petersburg, "the
# largest ocean" to "the ocean of the sea") were tried and left out: they moved with every
# candidate, whatever it learned, and the gate must see forgetting, not that noise.
PROBES = (
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of England?", "London"),
    ("What is the capital of Egypt?", "Cairo"),
    ("What colour is the sky on a clear day?", "blue"),
    ("What colour is snow?", "white"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("What is the opposite of day?", "night"),
    ("What is the opposite of up?", "down"),
    ("What is the opposite of big?", "small"),
    ("What do cows give us to drink?", "milk"),
    ("What gas do we breathe in to live?", "oxygen"),
    ("Which animal is known as the king of the jungle?", "lion"),
    ("Who was the first president of the United States?", "Washington"),
    ("What is the fastest land animal?", "cheetah"),
    ("How many continents are there?", "seven"),
    ("How many days are in a week?", "seven"),
    ("What is the largest mammal?", "whale"),
)


@dataclass(frozen=True)
class General:
    replay: tuple[tuple[str, str], ...]  # (question, the base's answer)
    probes: tuple[tuple[str, str], ...]  # (question, expected word) the base answers right


def _base_identity(home: Home) -> dict:
    config = home.load_config()
    entry = get_model(home, config.model)
    path = entry.gguf_path or entry.hf_dir
    size = path.stat().st_size if path is not None and path.is_file() else None
    return {"model": entry.name, "source": str(path), "bytes": size}


def general(
    home: Home, system_prompt: str, report=lambda message: None, record: bool = True
) -> General:
    """The recorded answers, recording them first when missing or made on another base
    (`record` False: the questions alone then, with no answers, for counting)."""
    path = home.path / "learn" / "general.json"
    identity = {
        **_base_identity(home),
        "system_prompt": system_prompt,
        "questions": hashlib.sha256(repr((REPLAY, PROBES)).encode()).hexdigest()[:16],
    }
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    if saved.get("base") != identity and not record:
        return General(replay=tuple((q, "") for q in REPLAY), probes=())
    if saved.get("base") != identity:
        report("recording the base model's answers to everyday questions (once per base)")
        config = dataclasses.replace(home.load_config(), adapters=[])
        engine = open_engine(home, config, report=lambda message: None)
        try:
            replay = answer_all(engine, system_prompt, list(REPLAY), ANSWER_TOKENS, whole=True)
            probes = answer_all(engine, system_prompt, [q for q, _ in PROBES], ANSWER_TOKENS)
        finally:
            engine.close()
        saved = {
            "base": identity,
            "replay": [[q, a] for q, a in zip(REPLAY, replay) if a.strip()],
            "probes": [[q, w] for (q, w), a in zip(PROBES, probes) if holds_word(a, w)],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return General(
        replay=tuple((q, a) for q, a in saved["replay"]),
        probes=tuple((q, w) for q, w in saved["probes"]),
    )
