"""PEFT's prompt-learning methods (prefix, P-tuning, prompt tuning) on transformers 5.24+.

transformers 5.24 renamed the attention-cache argument of its models from `past_key_values`
to `cache` (the old name is still accepted, with a warning, until 5.40). PEFT 0.21.2, the
newest release, still looks for the cache under the old name in two places, so that:
- prefix tuning of a classifier stops with "Model does not support past key values which are
  required for prefix tuning" (PEFT reads the forward's signature);
- generation with a prompt-learning adapter fails on a shape (OPT, BLOOM) or, worse, decodes
  tokens the model does not predict (GPT-2, LLaMA, GPT-J, T5...), because PEFT's
  `prepare_inputs_for_generation` no longer sees the cache and feeds the prompt again.

`fit_cache_name` puts the old name back at exactly those two places of one PeftModel: its
model's forward accepts `past_key_values` (and hands it on as `cache`), and the inputs PEFT
prepares for each generation step carry the cache under the name PEFT reads. On a
transformers whose models still say `past_key_values`, or for LoRA, it changes nothing.
tests/models/test_families.py checks every generating cell's `generate` against forward
passes that use no cache at all, so the day either library moves, the table says so.
"""

from __future__ import annotations

import inspect
import types


def fit_cache_name(model):
    """`model` (a PeftModel), fitted as the module docstring says; returned for chaining."""
    if not any(config.is_prompt_learning for config in model.peft_config.values()):
        return model
    inner = model.base_model  # for prompt learning: the transformers model itself
    if not _uses_new_name(inner):
        return model
    # Both are methods bound to `inner` (not closures over it), so that a deep copy of the
    # model calls its own copy.
    inner.forward = types.MethodType(_forward_taking_old_name(inner.forward), inner)
    if hasattr(model, "base_model_prepare_inputs_for_generation"):  # models that generate
        model.base_model_prepare_inputs_for_generation = types.MethodType(
            _inputs_with_old_name(model.base_model_prepare_inputs_for_generation), inner
        )
    return model


def _uses_new_name(model) -> bool:
    """Whether the model (or its backbone, which a classifier's forward hands `**kwargs` to)
    takes `cache` and not `past_key_values`."""
    names: set[str] = set()
    for module in {model, getattr(model, "base_model", model)}:
        names |= set(inspect.signature(module.forward).parameters)
    return "cache" in names and "past_key_values" not in names


def _unbound(method):
    """The function behind a method bound to its module, called with the module as `self`;
    a forward something else already wrapped (accelerate's hooks) is kept as it is."""
    if getattr(method, "__func__", None) is not None:
        return method.__func__
    return lambda self, *args, **kwargs: method(*args, **kwargs)


def _forward_taking_old_name(forward):
    call = _unbound(forward)

    def forward_with_past_key_values(self, *args, past_key_values=None, **kwargs):
        if past_key_values is not None:
            kwargs["cache"] = past_key_values
        return call(self, *args, **kwargs)

    # The forward's own signature plus the old name: PEFT looks for `past_key_values` in it,
    # and `generate` checks the inputs it is given against the rest.
    signature = inspect.signature(forward)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    more = [p for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    old_name = inspect.Parameter("past_key_values", inspect.Parameter.KEYWORD_ONLY, default=None)
    forward_with_past_key_values.__signature__ = signature.replace(
        parameters=[self_param, *params, old_name, *more]
    )
    return forward_with_past_key_values


def _inputs_with_old_name(prepare):
    call = _unbound(prepare)

    def prepare_with_past_key_values(self, *args, **kwargs):
        if "past_key_values" in kwargs and "cache" not in kwargs:
            kwargs["cache"] = kwargs.pop("past_key_values")
        inputs = call(self, *args, **kwargs)
        if "cache" in inputs:
            inputs["past_key_values"] = inputs.pop("cache")
        return inputs

    return prepare_with_past_key_values
