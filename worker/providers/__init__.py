"""LLM providers: clients, prices, token estimates and the handler-facing facade."""

from worker.providers.base import ChatClient, ChatRequest, ChatResponse, Message
from worker.providers.llm import LLM, LLMSession
from worker.providers.openai import OpenAIClient, classify, retry_after_seconds
from worker.providers.prices import PRICE_VERSION, PRICES, cost_usd, price_for

__all__ = [
    "LLM",
    "PRICES",
    "PRICE_VERSION",
    "ChatClient",
    "ChatRequest",
    "ChatResponse",
    "LLMSession",
    "Message",
    "OpenAIClient",
    "classify",
    "cost_usd",
    "price_for",
    "retry_after_seconds",
]
