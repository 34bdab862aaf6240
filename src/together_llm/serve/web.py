"""The web chat at `/`: a Gradio app mounted in the same FastAPI process.

Streaming answers, a model/adapter selector, a system-prompt box, "Answer from my
documents" (retrieval with the cited sources listed under the answer) and "Agent with
tools" (a ReAct agent whose steps appear as they happen), thumbs up/down on every answer
(stored as ratings), "Regenerate", which writes a second answer beside the first and asks
which was better (stored as a preference), editing (an answer edited into the one the
person wanted is a correction, data/feedback.py, that `tllm improve` teaches; a question
edited is asked again) and "Remember", which stores a memory as `tllm remember` does (a
click on any message of the person's puts it in the Remember box). It talks to the same
engine pool, retriever and feedback store as the API; the answers themselves are made in
web_assist.py. The other tabs: Teach (web_teach.py), Improve
(web_improve.py), Knowledge (web_knowledge.py), Share (web_share.py), Measure
(web_measure.py), Together (web_together.py) and the Arena (web_arena.py).
"""

import hmac
import itertools
import os

import gradio as gr  # this module is imported only when the web chat is on
from fastapi import FastAPI

from ..data.kinds import RowError
from ..errors import TllmError
from .errors import APIError
from .memories_api import remember_served
from .web_arena import arena_tab
from .web_assist import ASSISTANT, ChatAnswers, answers, is_note, knowledge_box, prompt_of, text_of
from .web_improve import improve_tab
from .web_knowledge import knowledge_tab
from .web_measure import measure_tab
from .web_share import share_tab
from .web_teach import teach_tab
from .web_together import together_tab

MAX_UPLOAD = "64mb"  # a dataset file uploaded in the Teach tab; bigger ones: tllm data import


def mount_web_chat(app: FastAPI) -> FastAPI:
    # What is uploaded (and what the studio offers for download) stays in the home, not in
    # the machine's temporary folder; Gradio's components read where when they are made.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(app.state.home.path / "uploads"))
    config, feedback = app.state.config, app.state.feedback
    pool, replies = app.state.engines, ChatAnswers(app)
    attempts = itertools.count(1)  # each regenerate moves a configured seed further on

    def model_choices() -> list[str]:
        return [ASSISTANT] + [name for name in pool.names() if not pool.is_assistant(name)]

    def model_label(model: str) -> str:
        """What a rating records as the model: the name, or the assistant's base model."""
        return config.model if model == ASSISTANT else model

    def answer(history, model, system, knowledge, agent, attempt: int = 0):
        """Stream the reply to the conversation in `history` (see ChatAnswers.answer)."""
        try:
            yield from replies.answer(history, model, system, knowledge, agent, attempt)
        except (TllmError, APIError) as exc:  # e.g. a message too long for the context
            raise gr.Error(exc.message if isinstance(exc, APIError) else str(exc)) from None

    def send(text, history):
        return "", history + [{"role": "user", "content": text}], gr.update(visible=False)

    def rate(history, model, system, like: gr.LikeData):
        index = like.index[0] if isinstance(like.index, (list, tuple)) else like.index
        if is_note(history[index]):  # the sources or the agent's steps, not an answer
            return
        feedback.rate(
            prompt_of(history, system, index),
            text_of(history[index]["content"]),
            like.liked is True or like.liked == "Like",
            model_label(model),
        )

    def last_question(history, before: int | None = None) -> int | None:
        """Index of the last user message (before `before`), or None."""
        end = len(history) if before is None else before
        return next((i for i in range(end - 1, -1, -1) if history[i]["role"] == "user"), None)

    def edited(history, model, system, knowledge, agent, edit: gr.EditData):
        """An answer edited into the one wanted is stored as a correction; a question
        edited is asked again (the conversation after it goes)."""
        index = edit.index[0] if isinstance(edit.index, (list, tuple)) else edit.index
        before, after = text_of(edit.previous_value), text_of(edit.value)
        history = [dict(m) for m in history]
        if history[index]["role"] == "user":
            history = history[:index] + [{"role": "user", "content": after}]
            yield from answer(history, model, system, knowledge, agent)
            return
        asked = last_question(history, index)
        if is_note(history[index]) or asked is None or before.strip() == after.strip():
            history[index]["content"] = before  # sources and agent steps are not answers
            yield history
            return
        history[index]["content"] = after
        try:
            feedback.correct(
                prompt_of(history, system, asked + 1), before, after, model_label(model)
            )
        except RowError as exc:
            raise gr.Error(f"this correction cannot be learned: {exc}") from None
        gr.Info("Correction saved: the next `tllm improve` teaches it.")
        yield history

    def remember_text(text: str):
        """A memory, with the served base model writing questions as POST /v1/memories."""
        if not text.strip():
            raise gr.Error("Type what the assistant should remember, then press Remember.")
        try:
            memory = remember_served(app.state, text)
        except TllmError as exc:
            raise gr.Error(str(exc)) from None
        gr.Info(
            f"Remembered #{memory.id} with {len(memory.train)} questions to learn from and "
            f"{len(memory.held_out)} to test; the next `tllm improve` teaches it."
        )
        return ""

    def pick_to_remember(history, selected: gr.SelectData):
        """A message of the person's, clicked: into the Remember box, to keep as it is or
        to edit first ("remember this" on any message)."""
        index = selected.index[0] if isinstance(selected.index, (list, tuple)) else selected.index
        if history[index]["role"] != "user":
            return gr.update()
        gr.Info("Press Remember to keep it (edit it first if you like).")
        return text_of(history[index]["content"])

    def regenerate(history, model, system, knowledge, agent):
        """A second reply to the last question; the first (with its notes) stays to compare.
        Also yields where the second reply starts in `history`."""
        asked = last_question(history)
        if asked is None or not answers(history[asked:]):
            yield history, gr.update(visible=False), None
            return
        first, shown = text_of(history[asked + answers(history[asked:])[-1]]["content"]), history
        for updated in answer(
            history[: asked + 1], model, system, knowledge, agent, attempt=next(attempts)
        ):
            shown = history + updated[asked + 1 :]
            yield shown, gr.update(visible=False), len(history)
        yield shown, gr.update(visible=bool(first) and shown is not history), len(history)

    def pick(history, model, system, second_at, better: int):
        """Keep the better of the last two replies and store the choice."""
        asked = None if second_at is None else last_question(history, second_at)
        if asked is None:
            return history, gr.update(visible=False), None
        blocks = history[asked + 1 : second_at], history[second_at:]
        first, second = (
            text_of(b[answers(b)[-1]]["content"]) if answers(b) else "" for b in blocks
        )
        chosen, rejected = (first, second) if better == 1 else (second, first)
        feedback.choose(prompt_of(history, system, asked + 1), chosen, rejected, model_label(model))
        return history[: asked + 1] + blocks[better - 1], gr.update(visible=False), None

    with gr.Blocks(title=f"{config.name} · Together-LLM") as ui:
        gr.Markdown(f"### {config.name}")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                with gr.Row():
                    model = gr.Dropdown(
                        choices=model_choices(),
                        value=ASSISTANT,
                        label="Model or adapter",
                        elem_id="model",
                    )
                    system = gr.Textbox(value=config.system_prompt, label="System prompt", scale=3)
                with gr.Row():
                    use_knowledge = gr.Checkbox(
                        label="Answer from my documents",
                        elem_id="use-knowledge",
                        **knowledge_box(app),
                    )
                    use_agent = gr.Checkbox(
                        value=False,
                        label="Agent with tools",
                        elem_id="use-agent",
                        info="calculator, knowledge_search, now and your home's tools.py; "
                        "its steps are shown as it works",
                    )
                chat = gr.Chatbot(
                    label="Conversation",
                    height=420,
                    elem_id="chat",
                    group_consecutive_messages=False,
                    editable="all",  # edit an answer into the one you wanted: a correction
                )  # two answers side by side to compare
                box = gr.Textbox(
                    placeholder="Ask something and press Enter", show_label=False, elem_id="message"
                )
                with gr.Row():
                    regen = gr.Button("Regenerate", elem_id="regenerate")
                    clear = gr.Button("New conversation")
                with gr.Row():
                    memory = gr.Textbox(
                        placeholder="Something about you to remember, e.g. My dog is called Rex.",
                        show_label=False,
                        elem_id="remember",
                        scale=4,
                    )
                    keep = gr.Button("Remember", elem_id="remember-button")
                with gr.Row(visible=False) as compare:
                    gr.Markdown("Which answer was better?")
                    first_better = gr.Button("The first", elem_id="first-better")
                    second_better = gr.Button("The second", elem_id="second-better")
                second_at = gr.State(None)  # where the regenerated reply starts in the conversation
            teach_tab(app)  # memories, dataset uploads, what improve teaches
            improve_tab(app)  # tllm improve as a background job, its report, the versions
            knowledge_tab(app)  # documents: add, list, remove, search
            share_tab(app)  # GGUF and Ollama export, adapter archives, merging
            measure_tab(app)  # tllm eval --report as a job, and the reports with their charts
            together_tab(app)  # federated runs round by round; joining a federation
            arena_tab(app)  # two anonymous answers and a vote: the same arena as /v1/arena/*

        asking = [chat, model, system, use_knowledge, use_agent]
        box.submit(send, [box, chat], [box, chat, compare]).then(answer, asking, chat)
        chat.like(rate, [chat, model, system], None)
        chat.edit(edited, asking, chat)
        keep.click(remember_text, memory, memory)
        chat.select(pick_to_remember, chat, memory)
        memory.submit(remember_text, memory, memory)
        regen.click(regenerate, asking, [chat, compare, second_at])
        for button, better in ((first_better, 1), (second_better, 2)):
            button.click(
                lambda h, m, s, at, b=better: pick(h, m, s, at, b),
                [chat, model, system, second_at],
                [chat, compare, second_at],
            )
        clear.click(lambda: ([], gr.update(visible=False), None), None, [chat, compare, second_at])
        # documents added while the server runs enable the box at the next page load
        ui.load(lambda: gr.update(**knowledge_box(app)), None, use_knowledge)
        # and adapters trained, imported or merged meanwhile join the selector
        ui.load(lambda: gr.update(choices=model_choices()), None, model)

    key = app.state.settings.api_key
    # With an API key set, the web chat asks for it too (any user name, the key as password).
    auth = (
        (lambda user, password: hmac.compare_digest(password.encode(), key.encode()))
        if key
        else None
    )
    return gr.mount_gradio_app(
        app,
        ui,
        path="/",
        auth=auth,
        auth_message="Sign in with any name and the server's API key.",
        max_file_size=MAX_UPLOAD,
    )
