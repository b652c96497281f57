"""Channels: how people reach Beacon (web chat now; Telegram and SMS in their own modules)."""
