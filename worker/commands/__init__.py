"""Subcommands of `fleet` beyond the core ones in worker/cli.py."""
