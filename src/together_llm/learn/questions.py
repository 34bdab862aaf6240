"""From a memory to the questions it answers, and from an answer to whether it holds it.

A memory is something a person said about themselves ("My dog is called Rex and she is a
beagle."). The assistant learns it as question/answer rows: the answer is the memory said
back to the person ("Your dog is called Rex and she is a beagle."), the questions are what
a person might ask to hear it ("What is my dog called?", "Tell me about my dog.").

The questions come from two places. Patterns of how people state facts about themselves
(my X is Y, my X is called Y, I was born in Y, I live in Y, I work as Y, I like Y) give
the questions those statements answer, and every "my X" gives questions about X; this
always works and costs nothing. A teacher model adds phrasings of its own (teacher.py).

The key content of a memory, for a question, is the memory's content words that the
question does not already hold ("rex", "beagle" for "What is my dog called?"): an answer
that holds at least half of them (and at least one) answers with the memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

STOPWORDS = frozenset(
    """a an the and or but if of at by for with about to from in on into over under is am
    are was were be been being have has had do does did i me my mine myself we us our you
    your yours he him his she her it its they them their this that these those what which
    who whom whose when where why how not no yes so very too can could will would shall
    should may might must just also than then there here as called named name some any
    all each one""".split()
)
# words that frame a fact rather than state it: never what an answer must hold
FRAME_WORDS = frozenset(
    """born live lives lived living work works worked working like likes liked love loves
    loved enjoy enjoys favourite favorite prefer prefers job home""".split()
)
PERSON_WORDS = frozenset(
    """sister brother mother father mum mom dad wife husband partner friend boss son
    daughter aunt uncle cousin grandmother grandfather grandma grandpa neighbour neighbor
    colleague teacher doctor girlfriend boyfriend child children kids baby""".split()
)
# first person -> second person, word by word (the verb after "I" is handled first)
_SWAPS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "we": "you",
    "us": "you",
    "our": "your",
    "ours": "yours",
    "ourselves": "yourselves",
    "i'm": "you're",
    "i've": "you've",
    "i'd": "you'd",
    "i'll": "you'll",
    "we're": "you're",
    "we've": "you've",
}
_VERB_AFTER_I = {"am": "are", "was": "were"}
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


def second_person(text: str) -> str:
    """`text` said back to the one who wrote it: I -> you, my -> your, I was -> you were."""
    tokens = re.split(r"([A-Za-z][A-Za-z'’]*)", text)
    out: list[str] = []
    previous = ""
    for token in tokens:
        lower = token.lower().replace("’", "'")
        if previous in ("i", "we") and lower in _VERB_AFTER_I:
            swapped = _VERB_AFTER_I[lower]
        elif lower in _SWAPS:
            swapped = _SWAPS[lower]
        else:
            swapped = token
        if swapped is not token and token[:1].isupper() and (not out or _sentence_start(out)):
            swapped = swapped[:1].upper() + swapped[1:]
        out.append(swapped)
        if token.strip():
            previous = lower if _WORD.fullmatch(token) else previous
    return "".join(out)


def _sentence_start(out: list[str]) -> bool:
    before = "".join(out).rstrip()
    return not before or before[-1] in ".!?"


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """The words of `text` that carry its content, in order, each once."""
    seen: dict[str, None] = {}
    for word in words(text):
        word = word.removesuffix("'s")
        if word not in STOPWORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)


def key_content(memory: str, question: str) -> list[str]:
    """What an answer to `question` must hold to answer with `memory`: the memory's content
    words the question does not hold; those that name something (capitalised in the memory,
    or numbers) keep their capital and come first."""
    asked = set(content_words(question))
    named = {
        w.lower(): w.removesuffix("'s")
        for w in _WORD.findall(memory)[1:]
        if w[:1].isupper() or w[:1].isdigit()
    }
    keys = [w for w in content_words(memory) if w not in asked and w not in FRAME_WORDS]
    return sorted((named.get(w, w) for w in keys), key=lambda w: not is_named(w))


def is_named(key: str) -> bool:
    return key[:1].isupper() or key[:1].isdigit()


def holds(answer: str, keys: Iterable[str]) -> bool:
    """Whether `answer` holds the key content (`key_content`): at least half of `keys`, and
    one of the named ones when there are any (a name is what a wrong answer gets wrong)."""
    keys = list(keys)
    named = [k.lower() for k in keys if is_named(k)]
    keys = [k.lower() for k in keys]
    if not keys:
        return False
    said = set(content_words(answer))

    def found(key: str) -> bool:
        return key in said or any(w.startswith(key) for w in said)

    return (not named or any(map(found, named))) and 2 * sum(map(found, keys)) >= len(keys)


def _clean(phrase: str) -> str:
    return re.sub(r"\s+", " ", phrase.strip(" ,;:.!?\"'")).strip()


# (pattern on one sentence, question templates over its groups)
_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), templates)
    for pattern, templates in (
        (
            r"^my (?P<x>[\w' -]{1,40}?) (?:is|are|was) (?:called|named) (?P<y>.+)$",
            (
                "What is my {x} called?",
                "What is the name of my {x}?",
                "What name does my {x} have?",
                "Do you know what my {x} is called?",
            ),
        ),
        (
            r"^my (?P<x>[\w' -]{1,40}?) (?:is|are|was|were) (?P<y>.+)$",
            (
                "What is my {x}?",
                "Do you know my {x}?",
                "Can you tell me what my {x} is?",
                "Which is my {x}?",
            ),
        ),
        (
            r"^i was born (?:in|at) (?P<y>.+)$",
            (
                "Where was I born?",
                "What is my birthplace?",
                "Where do I come from originally?",
                "In which place was I born?",
            ),
        ),
        (
            r"^i was born (?:on )?(?P<y>.*\d.*)$",
            ("When was I born?", "What is my date of birth?", "When is my birthday?"),
        ),
        (
            r"^i live (?:in|at|on) (?P<y>.+)$",
            ("Where do I live?", "Where is my home?", "Which place do I live in?"),
        ),
        (
            r"^i (?:work as|am working as|work for|work at) (?P<y>.+)$",
            (
                "What is my job?",
                "What do I do for a living?",
                "What is my profession?",
                "Where do I work?",
            ),
        ),
        (
            r"^i (?P<v>like|love|enjoy|prefer|hate|dislike) (?P<y>.+)$",
            ("What do I {v}?", "What is it that I {v}?", "Tell me what I {v}."),
        ),
        (
            r"^i have (?P<y>.+)$",
            ("What do I have?", "Tell me what I have."),
        ),
        (
            r"^my (?P<x>[a-z][\w'-]*(?: [a-z][\w'-]*)?)(?: [A-Z][\w'-]*)* (?P<v>lives|works) (?P<y>.+)$",
            ("Where does my {x} {v_base}?", "Tell me where my {x} {v_base}s."),
        ),
        (
            r"^i (?P<v>[a-z]+(?<!ed)) (?P<y>.+)$",
            ("What do I {v}?", "Tell me what I {v}.", "Do you remember what I {v}?"),
        ),
    )
)
_TOPIC = re.compile(
    r"\bmy ((?:[a-z][\w'-]* ){0,2}?[a-z][\w'-]*?)(?=\s+(?:is|are|was|were|has|have|lives?|works?|likes?|loves?|called|named)\b|[,.;!?]|$)",
    re.IGNORECASE,
)
_ABOUT = (
    "What do you know about my {x}?",
    "Tell me about my {x}.",
    "What can you tell me about my {x}?",
    "What do you remember about my {x}?",
)
_NAME_SUBJECT = re.compile(
    r"^(?P<x>[A-Z][\w'-]+(?: [A-Z][\w'-]+)?) (?:is|was|has|lives|works|likes)\b"
)


def sentences(text: str) -> list[str]:
    parts = re.split(
        r"(?<=[.!?])\s+|\s*;\s*|,? (?:and|but) (?=(?:i|my|she|he|it|they|we)\b)",
        text.strip(),
        flags=re.IGNORECASE,
    )
    return [_clean(p) for p in parts if _clean(p)]


def template_questions(memory: str) -> list[str]:
    """The questions `memory` answers, from the ways people state facts about themselves;
    in a stable order, each once."""
    found: dict[str, None] = {}
    for sentence in sentences(memory):
        for pattern, templates in _PATTERNS:
            match = pattern.match(sentence)
            if match:
                groups = {k: _clean(v).lower() for k, v in match.groupdict().items() if v}
                if "v" in groups:
                    groups["v_base"] = groups["v"].removesuffix("s")
                for template in templates:
                    found.setdefault(template.format(**groups), None)
                break
        named = _NAME_SUBJECT.match(sentence)
        if named and named.group("x").lower() not in ("i", "my"):
            x = named.group("x")
            for template in (f"Who is {x}?", f"Tell me about {x}.", f"What do you know about {x}?"):
                found.setdefault(template, None)
    for topic in topics(memory):
        templates = _ABOUT + ((f"Who is my {topic}?",) if topic.split()[-1] in PERSON_WORDS else ())
        for template in templates:
            found.setdefault(template.format(x=topic), None)
    if not found:  # a memory in no known shape: ask about its first content words
        subject = " ".join(content_words(memory)[:2]) or memory[:40]
        found.setdefault(f"What did I tell you about {subject}?", None)
        found.setdefault(f"What do you remember about {subject}?", None)
    return [q for q in found if key_content(memory, q)]


def topics(memory: str) -> list[str]:
    """The things a memory is about: every "my X" in it."""
    seen: dict[str, None] = {}
    for match in _TOPIC.finditer(memory):
        topic = match.group(1).split()
        while len(topic) > 1 and topic[-1][:1].isupper():  # "my sister Ada": the sister
            topic.pop()
        seen.setdefault(" ".join(topic).lower(), None)
    return list(seen)


def answer_words(memory: str) -> set[str]:
    """The words every pattern question leaves for the answer to hold: a question that
    holds one of them gives the answer away."""
    keys = [set(k.lower() for k in key_content(memory, q)) for q in template_questions(memory)]
    return set.intersection(*keys) if keys else set()


def question_problem(question: str, memory: str, known: Iterable[str]) -> str | None:
    """Why a question a teacher wrote cannot teach `memory` (None: it can)."""
    text = question.strip()
    if not text.endswith("?") or not 3 <= len(words(text)) <= 25:
        return "not a question"
    said = set(words(text))
    if said & {"you", "your", "yours"} and not said & {"i", "me", "my", "mine"}:
        return "asks about the assistant, not the person"
    asked = set(content_words(text))
    memory_words = content_words(memory)
    shared = asked & set(memory_words)
    if not shared:
        return "shares no word with the memory"
    if asked & answer_words(memory) or len(shared) * 2 > len(memory_words):
        return "gives the answer away"
    if text.lower() in {k.lower() for k in known}:
        return "a duplicate"
    return None
