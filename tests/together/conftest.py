"""Fixtures the federation tests share with the training and merging tests."""

from tests.adapters.test_merge import parents
from tests.together.fed_home import fed_home
from tests.train.conftest import one_thread, tiny_llama

__all__ = ["fed_home", "one_thread", "parents", "tiny_llama"]
