"""Prometheus metrics of the gateway (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter(
    "beacon_messages_total", "Messages handled by the gateway", ["channel", "direction"]
)
DUPLICATES = Counter(
    "beacon_duplicate_messages_total", "Redelivered inbound messages not handled again", ["channel"]
)
REJECTED = Counter(
    "beacon_rejected_requests_total", "Requests refused as malformed or forged", ["route", "reason"]
)
RASA_LATENCY = Histogram(
    "beacon_rasa_request_seconds",
    "Time Rasa took to answer one message",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
RASA_FAILURES = Counter("beacon_rasa_failures_total", "Messages Rasa could not answer")
NLG_RENDERS = Counter("beacon_nlg_renders_total", "Responses rendered for Rasa", ["language"])
PAGES = Counter(
    "beacon_pages_total",
    "SLA pages to the on-call responders, by pager and outcome (sent or failed)",
    ["pager", "outcome"],
)
RELAYED = Counter(
    "beacon_relayed_total",
    "Outbound messages handed to a push channel, by channel and outcome "
    "(sent, retry, failed, unreachable, opted_out)",
    ["channel", "outcome"],
)
INBOX = Counter(
    "beacon_inbox_total",
    "Inbound push-channel messages by outcome (accepted, duplicate, processed, deferred)",
    ["channel", "outcome"],
)
RATE_LIMITED = Counter(
    "beacon_rate_limited_total",
    "Messages kept and screened but not answered: one person sent too many in a minute",
    ["channel"],
)
DELIVERY = Counter(
    "beacon_delivery_status_total",
    "Delivery statuses a channel reported for messages Beacon sent (Twilio status callbacks)",
    ["channel", "status"],
)
