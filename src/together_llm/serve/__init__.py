"""`tllm serve`: one FastAPI app with the web chat at / and the OpenAI API at /v1."""
