"""The responder console: login, the live queue, case views and the dashboard."""
