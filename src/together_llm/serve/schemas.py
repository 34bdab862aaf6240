"""Request bodies of the OpenAI API, as pydantic models that validate what OpenAI
validates (ranges, required fields) so a bad request gets a 400 naming the field.

Unknown fields are ignored, as OpenAI-compatible servers commonly do, so newer clients
keep working. `top_k` and `repetition_penalty` are extensions llama.cpp servers also take;
`adapter_scale` and `lora` set adapters' strength for one request (adapters_api.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Body):
    type: Literal["text"]
    text: str


class FunctionCall(_Body):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCall(_Body):
    """A tool call an assistant message made earlier in the conversation."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # assistant messages that called tools
    tool_call_id: str | None = None  # tool messages: which call this is the result of

    def as_dict(self) -> dict[str, Any]:
        """The message as our engines take it: developer counts as system, parts joined;
        tool calls and results are kept for the assistant (assistant/tools.py) to put in words."""
        text = (
            self.content
            if isinstance(self.content, str)
            else "".join(part.text for part in self.content or [])
        )
        message: dict[str, Any] = {
            "role": "system" if self.role == "developer" else self.role,
            "content": text,
        }
        if self.tool_calls:
            message["tool_calls"] = [call.model_dump() for call in self.tool_calls]
        if self.role == "tool":
            message["tool_call_id"] = self.tool_call_id
        return message


class StreamOptions(_Body):
    include_usage: bool = False


class ResponseFormat(_Body):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None


class FunctionSpec(_Body):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON schema of an object


class ToolSpec(_Body):
    type: Literal["function"] = "function"
    function: FunctionSpec


class NamedFunction(_Body):
    name: str


class NamedToolChoice(_Body):
    type: Literal["function"] = "function"
    function: NamedFunction


class LoraChoice(_Body):
    """One entry of the `lora` extension (llama.cpp's server takes the same form)."""

    id: int | str  # the adapter's name, or its number in GET /lora-adapters
    scale: float = Field(..., ge=0, le=4)  # 0 leaves it out, 1 applies it as trained


class _Sampling(_Body):
    """Fields shared by chat and text completions."""

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0, le=2)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # extensions: the strength of the adapter `model` names, and adapters for this request
    adapter_scale: float | None = Field(None, ge=0, le=4)
    lora: list[LoraChoice] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must be non-empty")
        return stops


class ChatCompletionRequest(_Sampling):
    messages: list[Message] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    knowledge: bool | None = None  # extension: answer from the home's documents (knowledge_api.py)
    tools: list[ToolSpec] | None = None  # functions the model may call (tool_calls.py)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None  # accepted; at most one call is made per answer


class CompletionRequest(_Sampling):
    # text, texts, token ids (one tokenized prompt) or lists of token ids, as OpenAI takes
    prompt: str | list[int] | list[str] | list[list[int]]
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value):
        one = isinstance(value, str) or (value and all(isinstance(x, int) for x in value))
        prompts = [value] if one else value
        if not prompts or any(not p for p in prompts):
            raise ValueError("prompts must be non-empty")
        return prompts


class EmbeddingRequest(_Body):
    input: str | list[str]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"

    @field_validator("input")
    @classmethod
    def _inputs(cls, value):
        inputs = [value] if isinstance(value, str) else value
        if not inputs or any(not text for text in inputs):
            raise ValueError("input must be non-empty text or a list of non-empty texts")
        return inputs
