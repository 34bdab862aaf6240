"""A scripted Self-Instruct teacher for the interruption test (test_self_instruct.py)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading

import orjson


class ScriptedTeacher:
    """An OpenAI-compatible teacher on loopback whose answers are a pure function of the
    prompt (so two runs asking the same questions get the same answers), and which holds the
    instances request for `hold` until `release` is set: a run interrupted there cannot have
    finished, whatever the speed of the machine."""

    INSTRUCTIONS = [
        "Name three rivers that flow through Africa.",
        "Explain why the sky looks blue during the day.",
        "Suggest a short name for a bakery that sells only bread.",
    ]

    def __init__(self, hold: str | None = None):
        self.hold, self.held, self.release = hold, threading.Event(), threading.Event()
        self.asked: list[str] = []  # the instructions whose instances were asked for, in order
        teacher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # /v1/completions, streamed as the remote engine reads it
                prompt = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))[
                    "prompt"
                ]
                text = teacher.answer(prompt)
                event = orjson.dumps(
                    {"choices": [{"index": 0, "text": text, "finish_reason": "stop"}]}
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # interrupted
                    self.wfile.write(b"data: " + event + b"\n\ndata: [DONE]\n\n")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, prompt: str) -> str:
        if prompt.startswith("Come up with a series"):
            return " " + "\nTask 9: ".join(self.INSTRUCTIONS) + "\n\n"
        if prompt.startswith("Sort tasks"):
            return " text"
        instruction = prompt.rstrip("\n").rpartition("Task: ")[2]
        self.asked.append(instruction)
        if instruction == self.hold:
            self.held.set()
            self.release.wait(60)
        # The examples shown (seeded per step and candidate) are in the prompt: a resumed run
        # that drew other examples than one run would get other outputs.
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        return f"Output: an answer to '{instruction}' ({digest})"

    def close(self):
        self.release.set()
        self.server.shutdown()
