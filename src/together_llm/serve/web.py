"""The web chat at `/`: a Gradio app mounted in the same FastAPI process.

Streaming answers, a model/adapter selector, a system-prompt box, thumbs up/down on every
answer (stored as ratings) and "Regenerate", which writes a second answer beside the
first and asks which was better (stored as a preference). It talks to the same engine
pool and feedback store as the API.
"""

import hmac
import itertools

import gradio as gr  # this module is imported only when the web chat is on
from fastapi import FastAPI

from .web_arena import arena_tab

ASSISTANT = "(assistant)"  # the assistant as configured: its model with its active adapters


def mount_web_chat(app: FastAPI) -> FastAPI:
    pool, config, feedback = app.state.engines, app.state.config, app.state.feedback
    defaults = config.generation
    attempts = itertools.count(1)  # each regenerate moves a configured seed further on

    def engine_name(model: str) -> str | None:
        return None if model == ASSISTANT else model

    def model_label(model: str) -> str:
        """What a rating records as the model: the name, or the assistant's base model."""
        return config.model if model == ASSISTANT else model

    def prompt_of(history: list[dict], system: str, upto: int) -> list[dict]:
        """The conversation an answer at `upto` replied to, with the system prompt."""
        head = [{"role": "system", "content": system}] if system.strip() else []
        return head + [{"role": m["role"], "content": _text(m["content"])} for m in history[:upto]]

    def answer(history, model, system, attempt: int = 0):
        """Stream the assistant's reply to the conversation in `history`; `attempt` > 0
        (regenerate) moves a configured seed on, so the new answer can differ."""
        from ..engine.sampling import SamplingParams

        engine = pool.get(engine_name(model))
        seed = None if defaults.seed is None else (defaults.seed + attempt) % (2**32 - 1)
        params = SamplingParams.with_defaults(defaults, seed=seed)
        messages = prompt_of(history, system, len(history))
        history = history + [{"role": "assistant", "content": ""}]
        yield history  # the answer's bubble appears at once, even if it stays empty
        for piece in engine.chat(messages, params):
            history[-1]["content"] += piece
            yield history

    def send(text, history):
        return "", history + [{"role": "user", "content": text}], gr.update(visible=False)

    def rate(history, model, system, like: gr.LikeData):
        index = like.index[0] if isinstance(like.index, (list, tuple)) else like.index
        feedback.rate(prompt_of(history, system, index), _text(history[index]["content"]),
                      like.liked is True or like.liked == "Like", model_label(model))

    def regenerate(history, model, system):
        """A second answer to the last question; the first stays to compare."""
        if not history or history[-1]["role"] != "assistant":
            yield history, gr.update(visible=False)
            return
        first, shown = _text(history[-1]["content"]), history
        for updated in answer(history[:-1], model, system, attempt=next(attempts)):
            shown = history + [{"role": "assistant", "content": updated[-1]["content"]}]
            yield shown, gr.update(visible=False)
        yield shown, gr.update(visible=bool(first) and shown is not history)

    def pick(history, model, system, better: int):
        """Keep the better of the last two answers and store the choice."""
        first, second = _text(history[-2]["content"]), _text(history[-1]["content"])
        chosen, rejected = (first, second) if better == 1 else (second, first)
        feedback.choose(prompt_of(history, system, len(history) - 2), chosen, rejected,
                        model_label(model))
        return history[:-2] + [{"role": "assistant", "content": chosen}], gr.update(visible=False)

    with gr.Blocks(title=f"{config.name} · Together-LLM") as ui:
        gr.Markdown(f"### {config.name}")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                with gr.Row():
                    model = gr.Dropdown(choices=[ASSISTANT] + pool.names(), value=ASSISTANT,
                                        label="Model or adapter")
                    system = gr.Textbox(value=config.system_prompt, label="System prompt", scale=3)
                chat = gr.Chatbot(label="Conversation", height=420, elem_id="chat",
                                  group_consecutive_messages=False)  # two answers side by side to compare
                box = gr.Textbox(placeholder="Ask something and press Enter", show_label=False,
                                 elem_id="message")
                with gr.Row():
                    regen = gr.Button("Regenerate", elem_id="regenerate")
                    clear = gr.Button("New conversation")
                with gr.Row(visible=False) as compare:
                    gr.Markdown("Which answer was better?")
                    first_better = gr.Button("The first", elem_id="first-better")
                    second_better = gr.Button("The second", elem_id="second-better")
            arena_tab(app)  # two anonymous answers and a vote: the same arena as /v1/arena/*

        box.submit(send, [box, chat], [box, chat, compare]).then(answer, [chat, model, system], chat)
        chat.like(rate, [chat, model, system], None)
        regen.click(regenerate, [chat, model, system], [chat, compare])
        first_better.click(lambda h, m, s: pick(h, m, s, 1), [chat, model, system], [chat, compare])
        second_better.click(lambda h, m, s: pick(h, m, s, 2), [chat, model, system], [chat, compare])
        clear.click(lambda: ([], gr.update(visible=False)), None, [chat, compare])

    key = app.state.settings.api_key
    # With an API key set, the web chat asks for it too (any user name, the key as password).
    auth = (lambda user, password: hmac.compare_digest(password.encode(), key.encode())) if key else None
    return gr.mount_gradio_app(app, ui, path="/", auth=auth,
                               auth_message="Sign in with any name and the server's API key.")


def _text(content) -> str:
    """Chatbot message content as plain text (Gradio may hand back a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content or "")
