"""`tllm --help` and `tllm ask` on the GGUF engine stay light: no torch, transformers,
gradio or flwr (they would add seconds to every answer)."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "gradio", "flwr", "peft", "trl")

PROBE = """
import sys
from together_llm.cli.main import main
try:
    main({argv!r})
except SystemExit as exit:
    assert not exit.code, exit.code
print("HEAVY:", ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def loaded_heavy_modules(argv, home):
    code = PROBE.format(argv=argv, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"TLLM_HOME": str(home.path), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    line = [out for out in result.stdout.splitlines() if out.startswith("HEAVY:")][-1]
    return [m for m in line.removeprefix("HEAVY:").strip().split(",") if m]


def test_help_imports_nothing_heavy(home):
    assert loaded_heavy_modules(["--help"], home) == []
    assert loaded_heavy_modules(["ask", "--help"], home) == []


def test_ask_on_the_gguf_engine_imports_nothing_heavy(home):
    argv = ["ask", "--temperature", "0", "--max-tokens", "4", "Hello"]
    assert loaded_heavy_modules(argv, home) == []


def test_the_server_app_leaves_numpy_to_llama_cpp(home):
    """llama.cpp's CUDA backend crashed loading a model (segfault in
    llama_model_load_from_file, H100) when numpy was imported first; building the server app
    must not import it, so that the model opened before listening comes first."""
    code = (
        "import sys\n"
        "from together_llm.serve.app import create_app\n"
        "from together_llm.serve.settings import ServeSettings\n"
        f"create_app(ServeSettings(home={str(home.path)!r}, ui=False))\n"
        "print('NUMPY:', 'numpy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "NUMPY: False" in result.stdout
