"""Tiny random models, one per architecture of the family registry, built at test time.

No test downloads anything (DESIGN.md section 9): each model is a random initialisation of a
config two layers deep and 64 wide (a few hundred kilobytes), next to a byte-level BPE tokenizer
trained on eight sentences, both saved as a local Hugging Face directory (safetensors) that
`load_hf` reads like a real one. All fifteen build in about five seconds.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

# Special tokens are the same strings and ids for every architecture, so configs can name them
# by number; each family then picks which ones frame a sequence.
PAD, BOS, EOS, UNK, MASK = "<pad>", "<s>", "</s>", "<unk>", "<mask>"
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, MASK]

SENTENCES = [
    "The cat sat on the mat and looked at the moon.",
    "A small model learns a few facts about cats, dogs and birds.",
    "Translate English to French: the house is blue.",
    "Summarize: the meeting moved to Tuesday because of the rain.",
    "Question: what is two plus two? Answer: four.",
    "Together we train one adapter on private data, and only tensors travel.",
    "Bonjour, comment allez-vous? Very well, thank you!",
    "Numbers 0 1 2 3 4 5 6 7 8 9 and symbols + - * / = ( ) [ ] { }",
]

# The fourteen architectures of the issue, and DeBERTa (v1), which works as well as v2.
FAMILY = {
    "bert": "encoder",
    "roberta": "encoder",
    "distilbert": "encoder",
    "albert": "encoder",
    "deberta": "encoder",
    "deberta-v2": "encoder",
    "longformer": "encoder",
    "gpt2": "decoder",
    "gptj": "decoder",
    "opt": "decoder",
    "bloom": "decoder",
    "llama": "decoder",
    "bart": "encoder-decoder",
    "t5": "encoder-decoder",
    "pegasus": "encoder-decoder",
}

# One line per architecture: only what differs from the shared sizes below. The sizes are as
# small as the code of each model allows (heads divide the width, rotary fits a head...), and
# widths are multiples of 64 because bitsandbytes quantizes (QLoRA) in blocks of 64 inputs.
H, LAYERS, HEADS, FF, POSITIONS = 64, 2, 4, 128, 64
# Encoders too: at the usual 0.02 init every input gets nearly the same summary vector, and
# a classifier has nothing to tell apart; the wider init (and no dropout) keeps inputs apart.
ENCODER = dict(
    initializer_range=0.2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    hidden_size=H,
    num_hidden_layers=LAYERS,
    num_attention_heads=HEADS,
    intermediate_size=FF,
    max_position_embeddings=POSITIONS,
)
# BART-likes: with the usual 0.02 init a 64-wide random decoder barely reads its encoder
# (cross-attention adds almost nothing to the residual), so no prompt-tuning method could show
# a falling loss; a wider init and no dropout give every method a signal to learn from.
SEQ2SEQ = dict(
    init_std=0.2,
    dropout=0.0,
    d_model=H,
    encoder_layers=LAYERS,
    decoder_layers=LAYERS,
    encoder_attention_heads=HEADS,
    decoder_attention_heads=HEADS,
    encoder_ffn_dim=FF,
    decoder_ffn_dim=FF,
    max_position_embeddings=POSITIONS,
)
CONFIGS = {
    "bert": ENCODER,
    # RoBERTa-style positions start after the pad id, hence the two spare positions.
    "roberta": {**ENCODER, "max_position_embeddings": POSITIONS + 2},
    "distilbert": dict(
        initializer_range=0.2,
        dropout=0.0,
        attention_dropout=0.0,
        dim=H,
        n_layers=LAYERS,
        n_heads=HEADS,
        hidden_dim=FF,
        max_position_embeddings=POSITIONS,
    ),
    # ALBERT's word embeddings are narrower than its hidden layers: keep that trait.
    "albert": {**ENCODER, "hidden_size": 2 * H, "embedding_size": H},
    "deberta": {**ENCODER, "type_vocab_size": 0},
    "deberta-v2": {**ENCODER, "type_vocab_size": 0},
    "longformer": {
        **ENCODER,
        "max_position_embeddings": POSITIONS + 2,
        "attention_window": [4] * LAYERS,
    },
    "gpt2": dict(n_embd=H, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS),
    "gptj": dict(n_embd=H, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS, rotary_dim=4),
    "opt": dict(
        hidden_size=H,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        ffn_dim=FF,
        word_embed_proj_dim=H,
        max_position_embeddings=POSITIONS,
    ),
    "bloom": dict(hidden_size=H, n_layer=LAYERS, n_head=HEADS),
    # Two key/value heads for four query heads: grouped-query attention, as in real LLaMAs.
    "llama": dict(
        hidden_size=H,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=2,
        intermediate_size=FF,
        max_position_embeddings=POSITIONS,
    ),
    # A shallower decoder than encoder, and (T5) heads d_kv wide rather than width / heads, as
    # in real checkpoints (distil-BART, mT5): prefix tuning must size its cache from them.
    "bart": {**SEQ2SEQ, "decoder_layers": 1, "decoder_start_token_id": EOS_ID},
    "t5": dict(
        d_model=H,
        d_kv=2 * H // HEADS,
        d_ff=FF,
        num_layers=LAYERS,
        num_decoder_layers=LAYERS,
        num_heads=HEADS,
        decoder_start_token_id=PAD_ID,
    ),
    "pegasus": {**SEQ2SEQ, "decoder_start_token_id": PAD_ID},
}


def make_tokenizer():
    """A byte-level BPE tokenizer (no unknown characters) trained on SENTENCES, unframed."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(SENTENCES, trainer)
    return tokenizer


def _framed(tokenizer, family: str):
    """Wrap the raw tokenizer in PreTrainedTokenizerFast with the family's framing:
    encoders `<s> text </s>` (CLS/SEP), decoders `<s> text`, encoder-decoders `text </s>`."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    single = {"encoder": f"{BOS} $A {EOS}", "decoder": f"{BOS} $A", "encoder-decoder": f"$A {EOS}"}[
        family
    ]
    pair = {
        "encoder": f"{BOS} $A {EOS} $B {EOS}",
        "decoder": f"{BOS} $A $B",
        "encoder-decoder": f"$A {EOS} $B {EOS}",
    }[family]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(BOS, BOS_ID), (EOS, EOS_ID)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        cls_token=BOS,
        sep_token=EOS,
        mask_token=MASK,
        model_max_length=POSITIONS,
        # Decoders pad on the left so that batched generation continues right after the prompt.
        padding_side="left" if family == "decoder" else "right",
    )


_TOKENIZER_CACHE: dict = {}


def make_tiny_model(
    model_type: str, directory, task: str | None = None, num_labels: int = 2
) -> Path:
    """Build a random `model_type` model for `task` (default: the family's first task) and its
    tokenizer, save both into `directory` and return it as a Path."""
    import torch
    from tokenizers import Tokenizer
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
    )

    family = FAMILY[model_type]
    task = (
        task
        or {"encoder": "classify", "decoder": "causal-lm", "encoder-decoder": "seq2seq"}[family]
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    if "raw" not in _TOKENIZER_CACHE:  # train once a session; each model gets its own copy
        _TOKENIZER_CACHE["raw"] = make_tokenizer().to_str()
    tokenizer = _framed(Tokenizer.from_str(_TOKENIZER_CACHE["raw"]), family)

    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        num_labels=num_labels,
        **CONFIGS[model_type],
    )
    auto = {
        "classify": AutoModelForSequenceClassification,
        "embed": AutoModel,
        "causal-lm": AutoModelForCausalLM,
        "seq2seq": AutoModelForSeq2SeqLM,
    }[task]
    torch.manual_seed(0)  # the same random weights every run, so failures reproduce
    model = auto.from_config(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def make_long_llama(directory) -> Path:
    """The tiny LLaMA, told it can see 256 positions rather than 64: rotary positions have no
    table, so nothing else changes, and a ChatML conversation in its byte-level tokens is
    about 80 tokens long."""
    directory = make_tiny_model("llama", directory)
    config = json.loads((directory / "config.json").read_text())
    config["max_position_embeddings"] = 256
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@contextlib.contextmanager
def one_torch_thread():
    """Tiny models run fastest on one thread: on this busy two-core machine torch's default
    thread pool spins (it made the family tests 8x slower), and the same thread count every
    time keeps results comparable between runs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":  # build all of them once, to see they build and how fast
    import sys
    import tempfile
    import time

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in FAMILY:
            make_tiny_model(name, Path(tmp) / name)
            print(name, json.loads((Path(tmp) / name / "config.json").read_text())["architectures"])
    print(f"{len(FAMILY)} models in {time.perf_counter() - start:.1f} s", file=sys.stderr)
