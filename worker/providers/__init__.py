"""LLM providers: clients, taxonomy, breaker, cache, prices, tokens and the facade.

``go_duration``, ``retry_after_seconds`` and ``schedule`` live in ``worker.outbound``
(shared with the sends) and are re-exported here under their old names."""

from worker.outbound import go_duration, retry_after_seconds, schedule
from worker.providers.base import ChatClient, ChatRequest, ChatResponse, Message
from worker.providers.breaker import BreakerPolicy, CircuitBreaker
from worker.providers.cache import ResponseCache, cache_key
from worker.providers.clients import (
    AzureOpenAIClient,
    HttpChatClient,
    OpenAIClient,
    parse_response,
)
from worker.providers.gate import Arm, CallAsk, SpendGate, Ticket
from worker.providers.llm import LLM, LLMSession, Route
from worker.providers.prices import PRICE_VERSION, PRICES, PriceTable, cost_usd, price_for
from worker.providers.taxonomy import classify
from worker.providers.tokens import count_messages, count_text, encoding_name

__all__ = [
    "LLM",
    "PRICES",
    "PRICE_VERSION",
    "Arm",
    "AzureOpenAIClient",
    "BreakerPolicy",
    "CallAsk",
    "ChatClient",
    "ChatRequest",
    "ChatResponse",
    "CircuitBreaker",
    "HttpChatClient",
    "LLMSession",
    "Message",
    "OpenAIClient",
    "PriceTable",
    "ResponseCache",
    "Route",
    "SpendGate",
    "Ticket",
    "cache_key",
    "classify",
    "cost_usd",
    "count_messages",
    "count_text",
    "encoding_name",
    "go_duration",
    "parse_response",
    "price_for",
    "retry_after_seconds",
    "schedule",
]
