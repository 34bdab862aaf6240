"""`tllm optimize`: measure every backend that can serve the assistant, side by side, and
make the fastest one whose quality stays within a bound the assistant's serving backend.

Each backend (backends.py) is measured in a process of its own
(measure.py) on the same prompts and the same held-out token ids: decode tokens/s,
time to first token, peak resident memory and model bytes, and perplexity. Quality is the
perplexity increase over transformers fp32, the reference; a backend is within the bound
when its perplexity is at most the reference's times (1 + max_ppl_increase). Of those, the
one with the highest decode rate wins, and assistant.yaml is changed to serve with it:
    transformers-P   engine transformers, precision P, the base model and the adapter;
    llama.cpp-K      engine llama.cpp, the GGUF of kind K (adapter merged in) registered as
                     a model and made the assistant's model, no separate adapter.
Everything measured goes to runs/<id>/optimize.json, chosen or not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import TllmError
from ..evaluate.perplexity import text_rows
from ..home import Home, new_run_id
from .backends import (
    BACKENDS,
    REFERENCE,
    Subject,
    find_subject,
    gguf_files,
    register_gguf,
    unavailable,
)
from .benchmark_set import HELD_OUT, PROMPTS

DEFAULT_WINDOW = 256  # tokens per perplexity window: every backend scores the same ones


def check_backends(names: list[str] | None) -> list[str]:
    """The backends to measure in table order, the reference always among them."""
    if not names:
        return list(BACKENDS)
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise TllmError(f"unknown backend {unknown[0]!r}; backends: {', '.join(BACKENDS)}")
    wanted = set(names) | {REFERENCE}
    return [name for name in BACKENDS if name in wanted]


def held_out_rows(subject: Subject, texts: list[str]) -> list[dict]:
    """The held-out text as token ids and scored flags, tokenized once by the base's
    tokenizer (the GGUF files' tokenizers reproduce it), so every backend scores the same
    tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(subject.hf_dir, local_files_only=True)
    return [{"ids": row.ids, "scored": row.scored} for row in text_rows(texts, tokenizer)]


def _context(subject: Subject, wanted: int) -> int:
    config = json.loads((subject.hf_dir / "config.json").read_text(encoding="utf-8"))
    limit = config.get("max_position_embeddings") or config.get("n_positions") or wanted
    return min(wanted, int(limit))


def run_worker(spec: dict) -> dict:
    """Measure one backend in a fresh process; its figures, or a TllmError with its reason."""
    done = subprocess.run(
        [sys.executable, "-m", "together_llm.optimize.measure"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TllmError(tail)
    return json.loads(lines[-1])


def choose(rows: list[dict], max_ppl_increase: float) -> dict:
    """Mark each measured row with its perplexity increase over the reference and whether
    that is within the bound; return the fastest row within it (decode tokens/s, then time
    to first token)."""
    reference = next((r for r in rows if r["backend"] == REFERENCE), None)
    if reference is None or reference["status"] != "ok":
        why = f" ({reference['reason']})" if reference else ""
        raise TllmError(
            f"the reference backend {REFERENCE} could not be measured{why}, so no "
            "quality bound can be checked"
        )
    limit = reference["perplexity"] * (1 + max_ppl_increase)
    measured = [r for r in rows if r["status"] == "ok"]
    for row in measured:
        row["ppl_increase"] = row["perplexity"] / reference["perplexity"] - 1
        row["within_bound"] = row["perplexity"] <= limit
    eligible = [r for r in measured if r["within_bound"]]
    return max(eligible, key=lambda r: (r["decode_tokens_per_s"], -r["ttft_s"]))


def apply_choice(home: Home, row: dict, subject: Subject) -> dict:
    """Make `row`'s backend the assistant's; returns the settings written."""
    config = home.load_config()
    engine, form = BACKENDS[row["backend"]]
    if engine == "transformers":
        config.engine, config.precision = "transformers", form
        config.model = subject.base.name
        config.adapters = [subject.adapter] if subject.adapter else []
    else:
        config.engine = "llama.cpp"
        config.model = register_gguf(home, Path(row["file"]))
        config.adapters = []  # merged into the GGUF: applying it again would double it
    home.save_config(config)
    return {
        "engine": config.engine,
        "model": config.model,
        "precision": config.precision,
        "adapters": config.adapters,
    }


def _run_dir(home: Home, subject: Subject) -> Path:
    root = home.runs_dir
    run_dir = root / new_run_id(root, f"optimize-{subject.label}")
    run_dir.mkdir(parents=True)
    return run_dir


def optimize(
    home: Home,
    adapter: str | None = None,
    max_ppl_increase: float = 0.05,
    prompts: list[str] | None = None,
    text: list[str] | None = None,
    apply: bool = True,
    backends: list[str] | None = None,
    max_tokens: int = 48,
    window: int = DEFAULT_WINDOW,
    report=print,
) -> dict:
    """Measure, choose and (with `apply`) switch the assistant's backend; returns what
    runs/<id>/optimize.json holds."""

    if not 0 <= max_ppl_increase < 10:
        raise TllmError(f"--max-ppl-increase is a fraction (0.05 = 5%), not {max_ppl_increase}")
    if max_tokens < 2:
        raise TllmError(
            "--max-tokens must be at least 2: decode speed needs tokens after the first"
        )
    names = check_backends(backends)
    subject = find_subject(home, adapter, report)
    config = home.load_config()
    context = _context(subject, config.context_length)
    window = min(window, context)
    rows = held_out_rows(subject, text or HELD_OUT)
    reasons = {name: unavailable(name, subject) for name in names}
    kinds = [BACKENDS[n][1] for n in names if BACKENDS[n][0] == "llama.cpp" and not reasons[n]]
    files = gguf_files(home, subject, kinds, report) if kinds else {}
    common: dict[str, Any] = {  # what every measuring worker is given
        "context_length": context,
        "threads": config.threads,
        "max_tokens": max_tokens,
        "system_prompt": config.system_prompt,
        "prompts": prompts or PROMPTS,
        "rows": rows,
        "window": window,
        "stride": max(1, window // 2),
    }
    table = []
    for name in names:
        engine, form = BACKENDS[name]
        row = {"backend": name, "engine": engine}
        if reasons[name]:
            table.append({**row, "status": "skipped", "reason": reasons[name]})
            report(f"{name}: skipped ({reasons[name]})")
            continue
        if engine == "transformers":
            spec = {
                "engine": engine,
                "model_dir": str(subject.hf_dir),
                "precision": form,
                "adapters": [str(subject.adapter_path)] if subject.adapter_path else [],
            }
        else:
            spec = {"engine": engine, "gguf": str(files[form])}
            row["file"] = str(files[form])
        report(f"measuring {name} ...")
        try:
            table.append({**row, "status": "ok", **run_worker({**common, **spec})})
        except TllmError as exc:
            table.append({**row, "status": "failed", "reason": str(exc)})
            report(f"{name}: failed ({exc})")
    chosen = choose(table, max_ppl_increase)
    result = {
        "base": subject.base.name,
        "adapter": subject.adapter,
        "reference": REFERENCE,
        "max_ppl_increase": max_ppl_increase,
        "window": window,
        "scored_tokens": next(r["scored_tokens"] for r in table if r["status"] == "ok"),
        "prompts": len(common["prompts"]),
        "max_tokens": max_tokens,
        "memory": "peak_rss_bytes: the measuring process's peak resident set after "
        "loading and answering; model_bytes: the weights as held",
        "backends": table,
        "chosen": chosen["backend"],
        "applied": None,
    }
    if apply:
        result["applied"] = apply_choice(home, chosen, subject)
    run_dir = _run_dir(home, subject)
    result["run_dir"] = str(run_dir)
    (run_dir / "optimize.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
