"""Dense embeddings for hybrid search, from a local transformers directory: an encoder of
the family registry (BERT, RoBERTa, DeBERTa...) or a sentence-transformers folder (its
transformer sits at the folder's top level). Vectors are the mean of the last hidden states
over real tokens (`models.load_hf.embed`), scaled to unit length so a dot product is the
cosine. torch loads only when an embedder is made.
"""

from __future__ import annotations

from pathlib import Path

from ..models.load_hf import embed, load_hf


class HFEmbedder:
    """`HFEmbedder(directory).embed(texts)` -> one unit vector (list of floats) per text."""

    def __init__(self, directory: str | Path, batch: int = 16):
        self.directory = Path(directory)
        self.name = self.directory.name  # the key its vectors are stored under
        self.batch = batch
        self.model, self.tokenizer = load_hf(self.directory, task="embed")

    def embed(self, texts: list[str]) -> list[list[float]]:
        import torch

        vectors = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch):
                part = embed(self.model, self.tokenizer, texts[start : start + self.batch])
                vectors.extend(torch.nn.functional.normalize(part.float(), dim=-1).tolist())
        return vectors
