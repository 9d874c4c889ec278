"""The web console (`fleet console`): overview, workflows, dead letters and costs for the
people around the operators, behind a token (viewer or operator)."""

from worker.console.app import Console, build_app
from worker.console.auth import Principal, TokenBook, digest, parse_tokens

__all__ = ["Console", "Principal", "TokenBook", "build_app", "digest", "parse_tokens"]
