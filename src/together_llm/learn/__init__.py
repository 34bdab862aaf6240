"""The personal loop: memories (`tllm remember`), improve rounds that learn them without
forgetting, and the versions of the assistant's adapter (history, rollback)."""
