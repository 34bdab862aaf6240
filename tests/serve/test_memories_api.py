"""`/v1/memories`: remember, list, show and forget over HTTP, as `tllm remember` does."""

from tests.serve.conftest import request
from together_llm.learn.memories import MemoryStore


def test_memories_are_remembered_listed_and_forgotten(server):
    base, home = server
    status, memory = request(
        base, "POST", "/v1/memories", {"text": "My dog is called Rex and she is a beagle."}
    )
    assert status == 201, memory
    assert memory["answer"] == "Your dog is called Rex and she is a beagle."
    taught = [p["question"] for p in memory["train"]]
    assert "What is my dog called?" in taught and memory["held_out"]
    # the served model was asked as the teacher: its questions were checked, kept or dropped
    from_teacher = [p for p in memory["train"] + memory["held_out"] if p["source"] != "pattern"]
    assert from_teacher or memory["dropped"]
    assert [m.text for m in MemoryStore(home).all()] == [memory["text"]]

    status, plain = request(
        base, "POST", "/v1/memories", {"text": "I was born in Hallstatt.", "teacher": False}
    )
    assert status == 201 and not plain["dropped"]
    status, listed = request(base, "GET", "/v1/memories")
    assert status == 200 and [m["id"] for m in listed["data"]] == [memory["id"], plain["id"]]
    status, one = request(base, "GET", f"/v1/memories/{plain['id']}")
    assert status == 200 and one["text"] == "I was born in Hallstatt."

    status, gone = request(base, "DELETE", f"/v1/memories/{memory['id']}")
    assert status == 200 and gone["deleted"]
    assert [m.id for m in MemoryStore(home).all()] == [plain["id"]]
    status, error = request(base, "GET", f"/v1/memories/{memory['id']}")
    assert status == 404 and "no memory" in error["error"]["message"]


def test_a_bad_memory_request_is_refused_by_name_and_stores_nothing(server):
    base, home = server
    before = len(MemoryStore(home).all())
    status, error = request(
        base, "POST", "/v1/memories", {"text": "x", "teacher": True, "tags": []}
    )
    assert status == 400 and "tags" in error["error"]["message"]
    status, error = request(base, "POST", "/v1/memories", {"text": "   ", "teacher": False})
    assert status == 400 and "needs some text" in error["error"]["message"]
    status, error = request(base, "POST", "/v1/memories", {"text": "y" * 5000})
    assert status == 400 and "text" in str(error["error"])
    assert len(MemoryStore(home).all()) == before
