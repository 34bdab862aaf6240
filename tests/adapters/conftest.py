"""The exchange and merge tests use the train tests' fixtures: `tiny_llama` (a tiny random
LLaMA) and `tiny_home` (a fresh home with it registered as `tiny`)."""

from tests.train.conftest import tiny_home, tiny_llama  # noqa: F401  (pytest fixtures)
