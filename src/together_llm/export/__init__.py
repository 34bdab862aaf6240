"""`tllm export`: models and adapters in the forms other tools run (exporter.py).

merge_into_base.py folds an adapter into its base (a Hugging Face directory); the GGUF
writing itself is models/to_gguf.py (llama.cpp's own converter scripts, which the adapter
store also runs to keep every LoRA's GGUF form current); quantize.py calls llama.cpp's
quantizer; modelfile.py writes the Ollama Modelfile.
"""
