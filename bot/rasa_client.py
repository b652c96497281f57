"""The gateway's client for the Rasa server: REST channel and status, on loopback."""

from __future__ import annotations

from typing import Any

import httpx

from bot.metrics import RASA_LATENCY


class RasaUnavailable(RuntimeError):
    """Rasa did not answer (not started, restarting, or failed)."""


class RasaClient:
    """Talks to Rasa's REST channel (``/webhooks/rest/webhook``) and API."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self._token = token
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Sends one user message; returns the bot's replies."""
        try:
            with RASA_LATENCY.time():
                response = await self._http.post(
                    "/webhooks/rest/webhook",
                    json={"sender": sender, "message": text, "metadata": metadata},
                )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailable(type(exc).__name__) from exc
        body = response.json()
        if not isinstance(body, list):
            raise RasaUnavailable("unexpected reply")
        return [m for m in body if isinstance(m, dict)]

    async def reset_dialogue(self, sender: str, language: str | None) -> None:
        """Returns a conversation to the bot after a responder resolved its case.

        Ends any form, clears the slots (the case's screening state starts
        afresh, so a new danger escalates again), keeps the language, and
        resumes the conversation followed by ``action_listen`` so that rules
        match from the next message.
        """
        events: list[dict[str, Any]] = [
            {"event": "active_loop", "name": None},
            {"event": "reset_slots"},
            {"event": "resume"},
            {"event": "action", "name": "action_listen"},
        ]
        if language:
            events.insert(2, {"event": "slot", "name": "language", "value": language})
        try:
            response = await self._http.post(
                f"/conversations/{sender}/tracker/events",
                params={"token": self._token, "include_events": "NONE"},
                json=events,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailable(type(exc).__name__) from exc

    async def forget(self, sender: str) -> None:
        """Empties the assistant's copy of a conversation (its tracker's events).

        Raises:
            RasaUnavailable: Rasa did not confirm; try again later.
        """
        try:
            response = await self._http.put(
                f"/conversations/{sender}/tracker/events",
                params={"token": self._token, "include_events": "NONE"},
                json=[],
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RasaUnavailable(type(exc).__name__) from exc

    async def model_loaded(self) -> bool:
        """Whether Rasa is up with a model loaded."""
        try:
            response = await self._http.get("/status", params={"token": self._token}, timeout=3.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and bool(response.json().get("model_file"))
