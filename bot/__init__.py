"""Beacon's gateway: channels, screening, handoff queue, responder console, i18n and CLI."""

__version__ = "0.1.0"
