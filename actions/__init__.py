"""Beacon's custom actions for the rasa-sdk action server (flat modules only)."""
