"""Many clients at once, and clients that hang up: no 5xx, and nothing stays stuck."""

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor

from tests.serve.conftest import request

CHAT = "/v1/chat/completions"


def test_sixteen_clients_five_requests_each(server):
    base, _ = server

    def client(i):
        statuses = []
        for j in range(5):
            body = {
                "messages": [{"role": "user", "content": f"Count to {i + j}."}],
                "max_tokens": 8,
                "temperature": 0.5,
                "stream": j % 2 == 0,
            }
            status, reply = request(base, "POST", CHAT, body, timeout=300)
            statuses.append(status)
            if body["stream"]:  # a whole stream: no error event, and [DONE] at the end
                assert '"error"' not in reply and reply.rstrip().endswith("data: [DONE]")
            else:
                assert reply["choices"][0]["message"]["content"] is not None
        return statuses

    with ThreadPoolExecutor(16) as pool:
        statuses = [s for result in pool.map(client, range(16)) for s in result]
    assert statuses == [200] * 80
    status, metrics = request(base, "GET", "/metrics")
    assert (
        status == 200 and 'tllm_requests_total{path="/v1/chat/completions",status="200"}' in metrics
    )


def test_a_client_that_hangs_up_mid_stream_frees_the_engine(server):
    base, _ = server
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    long_answer = {
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "max_tokens": 2000,
        "stream": True,
        "temperature": 0.8,
        "seed": 1,
    }
    connection.request(
        "POST", CHAT, body=json.dumps(long_answer), headers={"Content-Type": "application/json"}
    )
    response = connection.getresponse()
    assert response.status == 200
    response.fp.readline()  # the first event arrived: the answer is being generated
    connection.close()  # hang up

    # The server notices, and the worker cancels decoding (the engine tests show that a
    # closed generation stops decoding and releases the engine).
    deadline = time.monotonic() + 60
    while "tllm_generations_cancelled_total 1.0" not in request(base, "GET", "/metrics")[1]:
        assert time.monotonic() < deadline, "the abandoned generation was never cancelled"
        time.sleep(0.2)
    status, body = request(
        base,
        "POST",
        CHAT,
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0},
        timeout=60,
    )
    assert status == 200 and body["usage"]["completion_tokens"] >= 1
