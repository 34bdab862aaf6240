"""`tllm serve`: the web chat and the OpenAI-compatible API in one process."""

from __future__ import annotations

import click

from ..serve.settings import ServeSettings
from .common import group_home, home_options


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --api-key.",
)
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--api-key",
    envvar="TLLM_API_KEY",
    help="Require 'Authorization: Bearer KEY' (env TLLM_API_KEY).",
)
@click.option("--cors-origin", multiple=True, help="Allow browsers from this origin (repeatable).")
@click.option("--no-ui", is_flag=True, help="Serve only the API, no web chat.")
@click.option(
    "--slots",
    default=8,
    show_default=True,
    type=int,
    help="Requests decoded together (llama.cpp continuous batching).",
)
@click.option(
    "--knowledge/--no-knowledge",
    default=None,
    help="Answer chat completions from your documents, with a `sources` field "
    "(default: assistant.yaml's `knowledge`; a request's \"knowledge\" overrides).",
)
@home_options
def serve(host, port, api_key, cors_origin, no_ui, slots, knowledge, home_dir):
    """Serve the assistant: the web chat at /, the OpenAI API at /v1, /health and /metrics.

    \b
    Examples:
      tllm serve
      tllm serve --port 9000 --api-key s3cret
      curl localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
        -d '{"messages": [{"role": "user", "content": "Hi"}]}'
    """
    import uvicorn

    from ..serve.app import create_app

    settings = ServeSettings(
        home=home_dir or group_home(),
        host=host,
        port=port,
        api_key=api_key or None,
        ui=not no_ui,
        cors_origins=list(cors_origin),
        slots=slots,
        knowledge=knowledge,
    )
    app = create_app(settings)
    # Open the assistant's model before listening, in this thread: a model that cannot load
    # fails here with its reason, and the first request does not wait for the load.
    # (Loading llama.cpp's CUDA backend from a server worker thread crashed on an H100.)
    app.state.engines.get(None)
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    if settings.ui:
        click.echo(f"web chat:   {base}/", err=True)
    click.echo(
        f"OpenAI API: {base}/v1   (model: {app.state.config.model}; also /health, /metrics, /docs)",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
