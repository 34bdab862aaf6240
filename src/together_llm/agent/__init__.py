"""The agent: a ReAct loop (react.py) over tools (tools.py: typed functions with JSON
schemas; builtin_tools.py: calculator, knowledge_search, now; user_tools.py: the home's
tools.py), held to well-formed steps by GBNF grammars on llama.cpp (grammar.py, which the
API's tool calls use too). session.py is what `tllm ask/chat --agent` run."""
