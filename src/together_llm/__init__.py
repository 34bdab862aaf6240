"""Together-LLM: build your own language assistant and co-evolve it with others."""

__version__ = "0.1.0"
