"""The transformers engine: any Hugging Face causal or seq2seq model, with PEFT adapters.

`model.generate` runs in a worker thread and hands each new token id to us through a
queue, so text streams as it is produced and every generation feature transformers and
PEFT have (prefix caches, prompt tuning, seq2seq decoding) keeps working. Closing the
stream sets a flag a stopping criterion reads, which ends `generate` at the next step.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Generator, Sequence
from pathlib import Path

from ..errors import TllmError
from ..models.families import architecture
from ..models.load_hf import embed, load_hf, read_config
from ..models.peft_cache import fit_cache_name
from ..sampling import SamplingParams
from .protocol import Engine

_DONE = object()


class HFEngine(Engine):
    name = "transformers"

    def __init__(
        self,
        model_dir: Path,
        adapters: Sequence[Path] = (),
        context_length: int = 2048,
        model_name: str = "",
        precision: str = "fp32",
    ):
        """`precision`: the weights' form (PRECISIONS): fp32 as stored, bf16, or int8 (dynamic
        quantization of every Linear layer, with adapters merged in first)."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the CLI shows its own progress; keep answers clean
        hf_logging.set_verbosity_error()
        config = read_config(model_dir)
        family = architecture(config["model_type"]).family
        if family == "encoder":
            raise TllmError(
                f"{config['model_type']} is an encoder: it classifies and embeds "
                "text but does not generate it; pick a decoder or encoder-decoder model"
            )
        self.seq2seq = family == "encoder-decoder"
        model, self.tokenizer = load_hf(model_dir, task="seq2seq" if self.seq2seq else "causal-lm")
        if adapters:
            model = _with_adapters(model, adapters)
        self.precision = precision
        self.model = with_precision(model, precision).eval()
        self._lock = threading.Lock()  # one generate at a time on this model object
        limit = config.get("max_position_embeddings") or config.get("n_positions") or context_length
        self.context_length = min(context_length, limit)
        self.model_name = model_name or Path(model_dir).name
        tok = self.tokenizer
        self.chat_template = getattr(tok, "chat_template", None)
        self.bos_token = tok.bos_token or ""
        self.eos_token = tok.eos_token or ""
        self.special_texts = list(tok.all_special_tokens)
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self._eos = {i for i in eos + [tok.eos_token_id] if i is not None}

    def tokenize(self, text: str) -> list[int]:
        # seq2seq encoders expect their closing </s>; decoder prompts get only what the
        # chat template wrote, as transformers' apply_chat_template does.
        return self.tokenizer(text, add_special_tokens=self.seq2seq)["input_ids"]

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def is_end(self, token_id: int) -> bool:
        return token_id in self._eos

    def embed(self, texts: list[str]) -> list[list[float]]:
        import torch

        with self._lock, torch.inference_mode():
            vectors = embed(self.model, self.tokenizer, texts)
        return torch.nn.functional.normalize(vectors.float(), dim=-1).tolist()

    def _token_ids(
        self, prompt_ids: list[int], params: SamplingParams, max_tokens: int
    ) -> Generator[int, None, None]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        ids: queue.Queue = queue.Queue()
        cancel = threading.Event()
        input_ids = torch.tensor([prompt_ids])
        kwargs = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_tokens,
            do_sample=not params.greedy,
            repetition_penalty=params.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else min(self._eos, default=0),
            eos_token_id=sorted(self._eos) or None,
            streamer=_QueueStreamer(ids),
            stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
            logits_processor=LogitsProcessorList(
                [_OpenAIPenalties(params, len(prompt_ids), self.seq2seq)]
            ),
        )
        if not params.greedy:
            kwargs.update(
                temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None
            )

        def work():
            try:
                with self._lock, torch.inference_mode():
                    if params.seed is not None:
                        torch.manual_seed(params.seed)
                    self.model.generate(**kwargs)
            except BaseException as exc:  # handed to the reading side, which raises it
                ids.put(exc)
            finally:
                ids.put(_DONE)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            while (item := ids.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            worker.join()


def _with_adapters(model, adapters: Sequence[Path]):
    from peft import PeftModel

    names = [path.name for path in adapters]
    model = PeftModel.from_pretrained(model, str(adapters[0]), adapter_name=names[0])
    for path, name in zip(adapters[1:], names[1:]):
        model.load_adapter(str(path), adapter_name=name)
    if len(names) > 1:
        model.base_model.set_adapter(names)
    return fit_cache_name(model)


PRECISIONS = ("fp32", "bf16", "int8")


def with_precision(model, precision: str):
    """`model` in `precision`. int8 is torch's dynamic quantization: Linear weights stored as
    int8 with a scale per output channel (per-tensor scales lost far more perplexity on the
    bundled model), activations quantized on the fly; CPU only. PEFT's LoRA layers wrap the
    Linear layers they adapt, so an adapter is merged into the weights first; prompt-learning
    adapters (prefix, prompt, p-tuning) cannot be, and are refused."""
    if precision not in PRECISIONS:
        raise TllmError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    import torch

    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "fp32":
        return model.float()  # a no-op for the usual fp32 checkpoints
    if hasattr(model, "peft_config"):
        learned = [name for name, c in model.peft_config.items() if c.is_prompt_learning]
        if learned:
            raise TllmError(
                f"int8 needs the adapter merged into the weights; {', '.join(learned)} "
                "adds virtual tokens and cannot be merged: use fp32 or bf16"
            )
        model = model.merge_and_unload()

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch announces the move of this API to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.float(), {torch.nn.Linear: per_channel_dynamic_qconfig})


class _QueueStreamer:
    """transformers streamer protocol: `put` gets the prompt first, then each new token."""

    def __init__(self, ids: queue.Queue):
        self.ids = ids
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:  # the prompt (or a seq2seq decoder's start token)
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.ids.put(token)

    def end(self):
        pass


class _Cancelled:
    def __init__(self, flag: threading.Event):
        self.flag = flag

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.flag.is_set(), dtype=torch.bool)


class _OpenAIPenalties:
    """Presence and frequency penalties as OpenAI defines them, over the answer's tokens."""

    def __init__(self, params: SamplingParams, prompt_len: int, seq2seq: bool):
        self.presence, self.frequency = params.presence_penalty, params.frequency_penalty
        self.start = 1 if seq2seq else prompt_len  # where the answer starts in input_ids

    def __call__(self, input_ids, scores):
        import torch

        if not (self.presence or self.frequency) or input_ids.shape[1] <= self.start:
            return scores
        answer = input_ids[:, self.start :]  # [batch, answer_len]
        counts = torch.zeros_like(scores).scatter_add_(
            1, answer, torch.ones_like(answer, dtype=scores.dtype)
        )
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)
