"""`tllm export`: models and adapters in the forms other tools run (exporter.py).

merge_into_base.py folds an adapter into its base (a Hugging Face directory); llamacpp_scripts.py finds
llama.cpp's own converter scripts (fetched once from the llama-cpp-python source); gguf.py
runs them (model -> GGUF, LoRA -> GGUF adapter) and reads GGUF metadata back; quantize.py
calls llama.cpp's quantizer; modelfile.py writes the Ollama Modelfile.
"""
