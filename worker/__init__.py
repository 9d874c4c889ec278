"""Hybrid Orchestrator worker fleet: SQS workflow intents in, LLM work and costs out."""

__all__ = ["__version__"]

__version__ = "0.1.0"
