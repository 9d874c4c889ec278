"""OnlyFans sends: slot reservation, delayed messages, the gateway client."""

from worker.sends.gateway import GatewayClient
from worker.sends.service import MAX_DELAY, Enqueue, Sends, send_key

__all__ = ["MAX_DELAY", "Enqueue", "GatewayClient", "Sends", "send_key"]
