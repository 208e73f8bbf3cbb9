"""Models as the hub's clients and helpers: LLM summarizers and the model adapters."""
