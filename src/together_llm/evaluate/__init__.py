"""Measuring an assistant: perplexity, text-overlap metrics, multiple choice, LLM judges and
prompt perturbations for robustness. Each module imports its heavy dependencies (torch,
rouge-score, sacrebleu) inside its functions, so importing this package costs nothing."""
