"""`/metrics` counts every answer by status, failures included."""

from fastapi.testclient import TestClient

from together_llm.serve.app import create_app
from together_llm.serve.settings import ServeSettings


def test_a_crash_in_a_route_is_counted_as_500(home, monkeypatch):
    app = create_app(ServeSettings(home=str(home.path), ui=False))

    def broken(name):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.state.engines, "get", broken)
    client = TestClient(app, raise_server_exceptions=False)
    reply = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert reply.status_code == 500
    metrics = client.get("/metrics").text
    assert 'tllm_requests_total{path="/v1/chat/completions",status="500"} 1.0' in metrics
