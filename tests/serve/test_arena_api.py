"""People vote in the arena through the API: a battle shows two anonymous answers, a vote
reveals who wrote them and is stored, bad votes are refused, and the leaderboard rates them.

The contestants are the bundled model registered under two more names, served by the app's
own engine pool (llama.cpp, a few tokens an answer)."""

import shutil

import pytest
from fastapi.testclient import TestClient

from together_llm.evaluate.battles import BattleStore
from together_llm.home import Home
from together_llm.models.gguf_file import bundled_gguf
from together_llm.models.registry import add_model
from together_llm.serve.app import create_app
from together_llm.serve.settings import ServeSettings

NAMES = ["alpha-smol", "bravo-smol"]  # words no answer will contain


@pytest.fixture(scope="module")
def served_home(tmp_path_factory):
    """A home with the contestants registered (once: registering checks the whole GGUF)."""
    home = Home.open(tmp_path_factory.mktemp("arena") / "home")
    config = home.load_config()
    config.generation.max_tokens = 12
    config.generation.seed = 3
    home.save_config(config)
    for name in NAMES:
        add_model(home, name, str(bundled_gguf()))
    return home


@pytest.fixture
def home(served_home):
    """The shared home with no battles yet."""
    shutil.rmtree(served_home.path / "arena", ignore_errors=True)
    return served_home


@pytest.fixture
def client(home):
    app = create_app(ServeSettings(home=str(home.path), ui=False, slots=2))
    with TestClient(app) as client:
        yield client


def battle(client, prompt="Name a colour."):
    reply = client.post("/v1/arena/battles", json={"prompt": prompt, "contestants": NAMES})
    assert reply.status_code == 200, reply.text
    return reply


def assert_error(reply, status, param):
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
    return error


def test_a_battle_is_anonymous_and_a_vote_reveals_and_stores_it(client, home):
    reply = battle(client)
    shown = reply.json()
    assert (
        set(shown) == {"id", "object", "prompt", "answers"} and shown["prompt"] == "Name a colour."
    )
    assert len(shown["answers"]) == 2 and all(a.strip() for a in shown["answers"])
    assert not any(name in reply.text for name in NAMES + ["smol"])

    store = BattleStore.of(home)
    [pending] = store.list(pending=True)  # stored as shown, waiting for the vote
    assert pending.id == shown["id"] and [pending.answer_a, pending.answer_b] == shown["answers"]
    assert {pending.model_a, pending.model_b} == set(NAMES)

    vote = client.post("/v1/arena/votes", json={"battle": shown["id"], "vote": "b"})
    assert vote.status_code == 200, vote.text
    assert vote.json()["contestants"] == [pending.model_a, pending.model_b]
    assert vote.json()["winner"] == pending.model_b
    [decided] = store.list(pending=False)
    assert (decided.id, decided.verdict, decided.judge) == (shown["id"], "b", "human")


def test_bad_votes_are_refused_with_openai_errors_and_change_nothing(client, home):
    first = battle(client).json()["id"]
    assert client.post("/v1/arena/votes", json={"battle": first, "vote": "a"}).status_code == 200

    again = assert_error(
        client.post("/v1/arena/votes", json={"battle": first, "vote": "b"}), 409, "battle"
    )
    assert "already decided" in again["message"]
    unknown = assert_error(
        client.post("/v1/arena/votes", json={"battle": 999, "vote": "a"}), 404, "battle"
    )
    assert "no battle 999" in unknown["message"]
    pending = battle(client).json()["id"]
    assert_error(
        client.post("/v1/arena/votes", json={"battle": pending, "vote": "draw"}), 400, "vote"
    )

    verdicts = {b.id: b.verdict for b in BattleStore.of(home).list()}
    assert verdicts == {first: "a", pending: None}  # the refused votes left no trace


def test_bad_battles_are_refused_before_any_answer(client, home):
    unknown = client.post(
        "/v1/arena/battles", json={"prompt": "Hi", "contestants": ["alpha-smol", "nobody"]}
    )
    assert "nobody" in assert_error(unknown, 404, "contestants")["message"]
    same = client.post(
        "/v1/arena/battles", json={"prompt": "Hi", "contestants": ["alpha-smol"] * 2}
    )
    assert_error(same, 400, "contestants")
    assert_error(
        client.post("/v1/arena/battles", json={"prompt": "", "contestants": NAMES}), 400, "prompt"
    )
    huge = client.post("/v1/arena/battles", json={"prompt": "word " * 10_000, "contestants": NAMES})
    assert_error(huge, 400, "prompt")
    # No contestants named and no adapter to set against the base model: say so.
    unnamed = assert_error(
        client.post("/v1/arena/battles", json={"prompt": "Hi"}), 400, "contestants"
    )
    assert "no adapter" in unnamed["message"]
    assert BattleStore.of(home).list() == []


def test_the_leaderboard_rates_the_votes(client, home):
    assert client.get("/v1/arena/leaderboard").json() == {"object": "list", "data": []}
    store = BattleStore.of(home)
    for prompt in ("Name a colour.", "Say hello.", "Name a fruit."):
        shown = battle(client, prompt).json()
        stored = store.get(shown["id"])
        verdict = "a" if stored.model_a == "alpha-smol" else "b"  # the person prefers alpha
        voted = client.post("/v1/arena/votes", json={"battle": shown["id"], "vote": verdict})
        assert voted.status_code == 200

    board = client.get("/v1/arena/leaderboard", params={"bootstrap": 50}).json()["data"]
    assert [r["name"] for r in board] == ["alpha-smol", "bravo-smol"]
    assert (board[0]["wins"], board[0]["losses"], board[1]["losses"]) == (3, 0, 3)
    assert board[0]["rating"] > 1000 > board[1]["rating"]
    assert_error(
        client.get("/v1/arena/leaderboard", params={"bootstrap": -1}), 400, "query.bootstrap"
    )


def test_the_arena_needs_the_api_key_like_every_v1_route(home):
    app = create_app(ServeSettings(home=str(home.path), ui=False, api_key="sesame"))
    client = TestClient(app)
    assert client.get("/v1/arena/leaderboard").status_code == 401
    assert client.post("/v1/arena/votes", json={"battle": 1, "vote": "a"}).status_code == 401
    allowed = client.get("/v1/arena/leaderboard", headers={"Authorization": "Bearer sesame"})
    assert allowed.status_code == 200


def test_the_web_chats_arena_tab_battles_and_votes_through_the_same_arena(home):
    import gradio as gr

    from together_llm.serve.web_arena import arena_tab

    app = create_app(ServeSettings(home=str(home.path), ui=False, slots=2))
    with gr.Blocks() as ui, gr.Tabs():
        arena_tab(app)
    # The handlers the tab's buttons call, found by the buttons' element ids.
    clicked = {ui.blocks[block].elem_id: f.fn for f in ui.fns.values() for block, _ in f.targets}

    battle_id, answer_a, answer_b, votes, reveal = clicked["arena-battle"]("Name a colour.", NAMES)
    assert votes["visible"] is True and reveal == "" and answer_a.strip() and answer_b.strip()
    stored = BattleStore.of(home).get(battle_id)
    assert (stored.answer_a, stored.answer_b, stored.verdict) == (answer_a, answer_b, None)

    battle_id, said, votes, rows = clicked["arena-vote-a"](battle_id)
    assert battle_id is None and votes["visible"] is False
    assert f"Answer A was **{stored.model_a}**, answer B was **{stored.model_b}**" in said
    assert BattleStore.of(home).get(stored.id).verdict == "a"
    assert [row[1] for row in rows] == [stored.model_a, stored.model_b]  # the winner leads
    assert clicked["arena-refresh"]() == rows
    with pytest.raises(gr.Error, match="already decided"):
        clicked["arena-vote-b"](stored.id)  # a second vote on the same battle
