"""Prompts: the prompt registry and the execution log of every LLM call."""
