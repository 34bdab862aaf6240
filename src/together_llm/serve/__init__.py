"""`tllm serve`: one FastAPI app with the OpenAI API at /v1 (and, later, the web chat at /)."""
