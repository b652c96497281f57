"""Starts the real stack (``beacon up``) on free ports with a temporary database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.settings import ROOT
from tests.standins import free_port

BEACON = str(Path(sys.executable).parent / "beacon")


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    url: str
    log: Path
    #: Every (sender, text) sent through ``chat``: the log scan looks for them.
    said: list[tuple[str, str]] = field(default_factory=list)

    def chat(self, sender: str, text: str, **extra: Any) -> list[dict[str, Any]]:
        self.said.append((sender, text))
        response = httpx.post(
            f"{self.url}/webchat/messages",
            json={"sender": sender, "text": text, **extra},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def beacon(self, *args: str, input: str | None = None) -> str:
        return subprocess.run(
            [BEACON, *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            input=input,
        ).stdout

    def children(self) -> dict[str, int]:
        """The supervised processes, by name."""
        found: dict[str, int] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) != self.process.pid:
                continue
            line = b" ".join(cmdline).decode(errors="replace")
            for name, marker in (
                ("actions", "bot.actionserver"),
                ("rasa", "rasa run"),
                ("gateway", "bot.gateway"),
            ):
                if marker in line:
                    found[name] = int(proc.name)
        return found

    def health(self) -> int:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code
        except httpx.HTTPError:
            return 0

    def wait_healthy(self, timeout: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"beacon up exited: {self.log.read_text()[-3000:]}")
            if self.health() == 200:
                return time.monotonic() - started
            time.sleep(0.5)
        raise TimeoutError(f"stack not healthy: {self.log.read_text()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def start_stack(var: Path) -> Stack:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "BEACON_PORT": str(port),
            "BEACON_RASA_PORT": str(free_port()),
            "BEACON_ACTIONS_PORT": str(free_port()),
            "BEACON_VAR_DIR": str(var),
            "BEACON_DATABASE_URL": f"sqlite:///{var / 'beacon.db'}",
            "BEACON_LOG_FORMAT": "text",
            "RASA_TELEMETRY_ENABLED": "false",
        }
    )
    env.pop("BEACON_INTERNAL_TOKEN", None)
    var.mkdir(parents=True, exist_ok=True)
    log = var / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BEACON, "up"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    return Stack(process, env, f"http://127.0.0.1:{port}", log)
