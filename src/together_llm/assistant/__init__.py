"""The assistant: one core that every front end talks through (DESIGN §3).

answer.py turns a conversation and `AnswerOptions` into events (text pieces, agent steps,
cited sources, tool calls, the finished completion): it owns the system prompt, the
sampling defaults and seeds, knowledge grounding and citation (grounding.py), the client's
tools (tools.py: offered in the prompt, forced by grammar, read back as typed calls) and
the agent. `tllm ask`,
`tllm chat`, the web chat, the OpenAI routes and the arena are adapters over it. (Which
engine answers, for a model, an adapter and assistant.yaml, is engine/choice.py's call.)"""
