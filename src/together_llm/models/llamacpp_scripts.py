"""llama.cpp's own converter scripts, fetched once from the source distribution of the
installed llama-cpp-python, so the GGUF files we write are the ones its engine expects.

The wheel of llama-cpp-python holds the compiled library only; `convert_hf_to_gguf.py`,
`convert_lora_to_gguf.py`, their `conversion/` package and llama.cpp's own `gguf-py` ship
in its sdist (`vendor/llama.cpp/`). We extract exactly those into
`<venv>/share/tllm/llama.cpp-<version>/`. The bundled gguf-py goes with them because the
`gguf` on PyPI with the same version number can lag the converter it was cut from; the
scripts put their sibling `gguf-py` first on sys.path themselves.

Run `python -m together_llm.models.llamacpp_scripts` (scripts/fetch-converter does) to fetch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from ..errors import TllmError

SCRIPTS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")
PACKAGES = ("conversion/", "gguf-py/gguf/")  # what the scripts import from beside them
ENV_OVERRIDE = "TLLM_LLAMA_CPP_SRC"


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        raise TllmError("llama-cpp-python is not installed; run scripts/setup") from None


def converter_dir() -> Path:
    """Where the scripts for the installed llama-cpp-python live (or will)."""
    if os.environ.get(ENV_OVERRIDE):
        return Path(os.environ[ENV_OVERRIDE])
    return Path(sys.prefix) / "share" / "tllm" / f"llama.cpp-{llama_cpp_version()}"


def find_converter(script: str = "convert_hf_to_gguf.py") -> Path:
    """The path of `script`, refused with the fix if it was never fetched."""
    path = converter_dir() / script
    if not path.is_file():
        raise TllmError(
            f"llama.cpp's converter is missing ({path}); fetch it once with "
            "scripts/fetch-converter (it downloads the llama-cpp-python "
            f"{llama_cpp_version()} source from the package index)"
        )
    return path


def _wanted(member: str, root: str) -> str | None:
    """The path below vendor/llama.cpp/ of an sdist member we keep, else None."""
    prefix = f"{root}/vendor/llama.cpp/"
    if not member.startswith(prefix):
        return None
    rest = member[len(prefix) :]
    if rest in SCRIPTS or (rest.startswith(PACKAGES) and rest.endswith(".py")):
        return rest
    return None


def fetch(report=print) -> Path:
    """Download the sdist of exactly the installed llama-cpp-python and extract the
    converter scripts. Does nothing when they are already there."""
    target = converter_dir()
    if all((target / s).is_file() for s in SCRIPTS) and all(
        (target / p).is_dir() for p in PACKAGES
    ):
        report(f"llama.cpp converter already in {target}")
        return target
    version = llama_cpp_version()
    with tempfile.TemporaryDirectory(prefix="tllm-llama-cpp-src-") as tmp:
        report(f"downloading the llama-cpp-python {version} source distribution...")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",  # only this package: its build tools may come as wheels
                "llama-cpp-python",
                f"llama-cpp-python=={version}",
                "-d",
                tmp,
            ],
            capture_output=True,
            text=True,
        )
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise TllmError(
                f"could not download llama-cpp-python=={version}'s source: "
                f"{(done.stderr or done.stdout).strip()[-400:]}"
            )
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archives[0]) as tar:
            root = f"llama_cpp_python-{version}"
            for member in tar.getmembers():
                rest = _wanted(member.name, root)
                contents = tar.extractfile(member) if member.isfile() else None
                if rest is None or contents is None:
                    continue
                out = staging / rest
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(contents.read())
    missing = [s for s in SCRIPTS if not (staging / s).is_file()]
    if missing:
        raise TllmError(f"the llama-cpp-python {version} source has no {', '.join(missing)}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # complete or absent, never half-extracted
    report(f"llama.cpp converter in {target}")
    return target


def run_script(script: str, args: list[str], what: str) -> str:
    """Run one of the converter scripts with this Python; its output, or a TllmError with
    its last lines when it fails."""
    path = find_converter(script)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the scripts must use the gguf-py they came with
    done = subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise TllmError(f"llama.cpp's {script} failed while {what}:\n{tail}")
    return done.stdout + done.stderr


if __name__ == "__main__":
    try:
        fetch()
    except TllmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
