"""Models: the family registry, the home's model registry, loading and chat templates, GGUF
files both ways (gguf_to_hf.py; to_gguf.py with llama.cpp's converter, llamacpp_scripts.py)."""
