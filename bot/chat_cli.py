"""``beacon chat``: a terminal client for a running gateway's web chat API."""

from __future__ import annotations

import secrets
import sys
import uuid

import httpx


def run_chat(url: str, sender: str | None) -> int:
    """Reads lines from stdin, prints the bot's replies; a number presses a button."""
    sender = sender or f"cli-{secrets.token_hex(8)}"
    buttons: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    with httpx.Client(base_url=url, timeout=60.0) as client:
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                return 0
            text = line.strip()
            if not text:
                continue
            body: dict[str, str] = {"sender": sender, "text": text, "id": uuid.uuid4().hex}
            if text.isdigit() and 1 <= int(text) <= len(buttons):
                chosen = buttons[int(text) - 1]
                body.update(text=chosen["title"], payload=chosen["payload"])
            try:
                response = client.post("/webchat/messages", json=body)
            except httpx.HTTPError as exc:
                print(f"! cannot reach {url}: {type(exc).__name__}", file=sys.stderr)
                return 1
            if response.status_code != 200:
                print(f"! {response.status_code}: {response.json().get('error')}", file=sys.stderr)
                continue
            buttons = []
            for message in response.json()["messages"]:
                print(message["text"])
                for button in message.get("buttons") or []:
                    buttons.append(button)
                    print(f"  [{len(buttons)}] {button['title']}")
