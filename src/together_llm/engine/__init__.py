"""Engines: one generation protocol, a llama.cpp engine for GGUF and a transformers engine
for Hugging Face directories and PEFT adapters."""
