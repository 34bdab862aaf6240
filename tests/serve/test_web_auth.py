"""With an API key set, the studio is closed to anyone without it: Gradio's own routes
(the page's config, uploads, files, the event queue) refuse a client that has not signed in
with the key, nothing it sends is stored, and signing in with the key opens them."""

import httpx

from tests.serve.conftest import live_server
from together_llm.home import Home

KEY = "s3cret"


def closed_routes(client: httpx.Client, secret) -> dict[str, int]:
    """The status of each studio route a client reaches without signing in."""
    upload = client.post(
        "/gradio_api/upload", files={"files": ("notes.md", b"# Notes\n\nA secret.\n")}
    )
    return {
        "config": client.get("/config").status_code,
        "info": client.get("/gradio_api/info").status_code,
        "upload": upload.status_code,
        "file": client.get(f"/gradio_api/file={secret}").status_code,
        "queue join": client.post(
            "/gradio_api/queue/join",
            json={"data": [], "fn_index": 0, "session_hash": "x", "event_data": None},
        ).status_code,
        "queue data": client.get(
            "/gradio_api/queue/data", params={"session_hash": "x"}
        ).status_code,
        "run": client.post("/gradio_api/run/predict", json={"data": []}).status_code,
    }


def test_every_studio_route_needs_the_key(tmp_path, monkeypatch):
    uploads = tmp_path / "gradio"  # where the server's Gradio keeps what is uploaded
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    home = Home.open(tmp_path / "home")
    secret = home.path / "assistant.yaml"  # a file of the home a stranger must not read
    with live_server(home, "--api-key", KEY) as base:
        with httpx.Client(base_url=base, timeout=60) as stranger:
            statuses = closed_routes(stranger, secret)
            assert all(status in (401, 403) for status in statuses.values()), statuses
            wrong = stranger.post("/login", data={"username": "me", "password": "nope"})
            assert wrong.status_code in (400, 401), wrong.text
            assert closed_routes(stranger, secret)["upload"] in (401, 403)
        assert not list(uploads.glob("**/notes.md"))  # nothing the stranger sent was kept

        with httpx.Client(base_url=base, timeout=60) as person:
            signed = person.post("/login", data={"username": "me", "password": KEY})
            assert signed.status_code == 200, signed.text
            assert person.get("/config").status_code == 200
            upload = person.post(
                "/gradio_api/upload", files={"files": ("notes.md", b"# Notes\n\nMine.\n")}
            )
            assert upload.status_code == 200, upload.text
            assert [p.read_bytes() for p in uploads.glob("**/notes.md")] == [b"# Notes\n\nMine.\n"]
