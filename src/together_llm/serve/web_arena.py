"""The web chat's Arena tab: a person reads two anonymous answers to their prompt, says
which was better, then learns who wrote each; the leaderboard rates all stored battles.

It calls the same `ServedArena` as `/v1/arena/*` (no HTTP to itself), so a vote cast here
is stored and rated exactly like one posted to the API.
"""

from __future__ import annotations

import gradio as gr  # this module is imported only when the web chat is on
from fastapi import FastAPI

from ..errors import TllmError
from .arena_api import ServedArena, arena_of
from .errors import APIError

HEADERS = ["rank", "contestant", "rating", "95% interval", "battles", "W/T/L"]
VERDICT_WORDS = {"a": "A is better", "b": "B is better", "tie": "a tie"}


def start_battle(arena: ServedArena, prompt: str, chosen: list[str] | None):
    """(battle id, answer A, answer B) for the prompt; a refusal becomes a message."""
    try:
        battle = arena.battle(prompt or "", list(chosen) if chosen else None)
    except (APIError, TllmError) as exc:
        raise gr.Error(_message(exc)) from None
    first, second = battle["answers"]
    return battle["id"], first, second


def cast_vote(arena: ServedArena, battle_id: int | None, verdict: str) -> str:
    """Store the vote and say, in Markdown, who wrote which answer."""
    if battle_id is None:
        raise gr.Error("Start a battle first: write a prompt and press Battle.")
    try:
        result = arena.vote(battle_id, verdict)
    except (APIError, TllmError) as exc:
        raise gr.Error(_message(exc)) from None
    name_a, name_b = result["contestants"]
    return f"Your vote: {VERDICT_WORDS[verdict]}. Answer A was **{name_a}**, answer B was **{name_b}**."


def leaderboard_rows(arena: ServedArena) -> list[list]:
    """The leaderboard as table rows, best first."""
    return [
        [
            rank,
            r["name"],
            round(r["rating"]),
            f"{r['ci_low']:.0f}-{r['ci_high']:.0f}",
            r["battles"],
            f"{r['wins']}/{r['ties']}/{r['losses']}",
        ]
        for rank, r in enumerate(arena.ratings(), start=1)
    ]


def arena_tab(app: FastAPI) -> None:
    """Build the Arena tab inside the gr.Blocks (or gr.Tabs) being built."""
    arena = arena_of(app)
    with gr.Tab("Arena", id="arena"):
        gr.Markdown(
            "Two assistants answer your prompt. You see the answers without their "
            "names; say which is better and you will be told who wrote each."
        )
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", lines=2, scale=3, elem_id="arena-prompt")
            contestants = gr.Dropdown(
                choices=arena.choices(),
                multiselect=True,
                max_choices=2,
                label="Contestants",
                info="pick two, or none for the base model against an adapter",
            )
        fight = gr.Button("Battle", variant="primary", elem_id="arena-battle")
        with gr.Row():
            answer_a = gr.Textbox(label="Answer A", lines=8, interactive=False, elem_id="arena-a")
            answer_b = gr.Textbox(label="Answer B", lines=8, interactive=False, elem_id="arena-b")
        with gr.Row(visible=False) as votes:
            a_better = gr.Button("A is better", elem_id="arena-vote-a")
            tie = gr.Button("Tie", elem_id="arena-vote-tie")
            b_better = gr.Button("B is better", elem_id="arena-vote-b")
        reveal = gr.Markdown(elem_id="arena-reveal")
        battle = gr.State(None)  # the id of the battle on screen, per browser session
        with gr.Accordion("Leaderboard", open=False):
            table = gr.Dataframe(headers=HEADERS, value=[], interactive=False)
            refresh = gr.Button("Refresh", elem_id="arena-refresh")

    def fight_clicked(text, chosen):
        battle_id, first, second = start_battle(arena, text, chosen)
        return battle_id, first, second, gr.update(visible=True), ""

    def voting(verdict: str):
        def voted(battle_id):
            said = cast_vote(arena, battle_id, verdict)
            return None, said, gr.update(visible=False), leaderboard_rows(arena)

        return voted

    fight.click(fight_clicked, [prompt, contestants], [battle, answer_a, answer_b, votes, reveal])
    for button, verdict in ((a_better, "a"), (tie, "tie"), (b_better, "b")):
        button.click(voting(verdict), [battle], [battle, reveal, votes, table])
    refresh.click(lambda: leaderboard_rows(arena), None, table)


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, APIError) else str(exc)
