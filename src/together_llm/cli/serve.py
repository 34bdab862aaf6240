"""`tllm serve`: the web chat and the OpenAI-compatible API in one process."""

from __future__ import annotations

import click

from ..serve.settings import ServeSettings
from ..settings_kit import click_options, from_options
from .common import group_home, home_options


@click.command()
@click_options(ServeSettings)
@click.option(
    "--api-key",
    envvar="TLLM_API_KEY",
    help="Require 'Authorization: Bearer KEY' (env TLLM_API_KEY).",
)
@click.option("--cors-origin", multiple=True, help="Allow browsers from this origin (repeatable).")
@home_options
def serve(api_key, cors_origin, home_dir, **flags):
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

    settings = from_options(
        ServeSettings,
        flags,
        home=home_dir or group_home(),
        api_key=api_key or None,
        cors_origins=list(cors_origin),
    ).check()
    app = create_app(settings)
    # Open the assistant's model before listening, in this thread: a model that cannot load
    # fails here with its reason, and the first request does not wait for the load.
    # (Loading llama.cpp's CUDA backend from a server worker thread crashed on an H100.)
    app.state.engines.get(None)
    host, port = settings.host, settings.port
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    if settings.ui:
        click.echo(f"web chat:   {base}/", err=True)
    click.echo(
        f"OpenAI API: {base}/v1   (model: {app.state.config.model}; also /health, /metrics, /docs)",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
