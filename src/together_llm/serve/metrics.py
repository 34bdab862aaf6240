"""Prometheus metrics for `GET /metrics`, kept on `app.state` (one registry per app, so
two apps in one process, as in tests, never share counters)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tllm_requests", "HTTP requests by path and status", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "tllm_request_latency_seconds",
            "Time from request to response (for streams: to the first byte)",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "tllm_time_to_first_token_seconds",
            "Time from the start of a generation to its first text",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("tllm_prompt_tokens", "Prompt tokens processed", registry=r)
        self.generated_tokens = Counter("tllm_generated_tokens", "Tokens generated", registry=r)
        self.cancelled = Counter(
            "tllm_generations_cancelled",
            "Generations stopped before their end (client gone, or an error)",
            registry=r,
        )
        self.in_flight = Gauge(
            "tllm_requests_in_flight", "Generations running or waiting", registry=r
        )
        self.queue_depth = Gauge(
            "tllm_queue_depth", "Generations waiting for a free slot", registry=r
        )
        self.batch_size = Gauge(
            "tllm_batch_size", "Sequences being decoded together now (busy batch slots)", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Timer:
    """Measures one generation: time to first text and the tokens it used."""

    def __init__(self, metrics: ServerMetrics):
        self.metrics, self.start = metrics, time.perf_counter()
        self.first: float | None = None  # seconds to the first text, once it came

    def piece(self) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.start
            self.metrics.first_token.observe(self.first)

    def done(self, completion) -> None:
        if completion is not None:
            self.metrics.prompt_tokens.inc(completion.usage.prompt_tokens)
            self.metrics.generated_tokens.inc(completion.usage.completion_tokens)
