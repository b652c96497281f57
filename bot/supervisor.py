"""``beacon up``: the gateway, the Rasa server and the action server under one command.

It prepares the database and the model, starts the three processes on
loopback (the gateway on ``BEACON_HOST``), waits until ``/healthz`` says the
stack is ready, prints where to open it, restarts a child that dies (with
backoff), and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from bot.settings import ROOT, Settings

READY_TIMEOUT = 600.0
STOP_GRACE = 15.0
MAX_BACKOFF = 30.0


@dataclass
class Child:
    """One supervised process."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=env, start_new_session=True)
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)


def child_env(settings: Settings, token: str) -> dict[str, str]:
    """The environment every child runs with: one settings source, no telemetry."""
    env = dict(os.environ)
    env.update(
        {
            "BEACON_PORT": str(settings.port),
            "BEACON_RASA_PORT": str(settings.rasa_port),
            "BEACON_ACTIONS_PORT": str(settings.actions_port),
            "BEACON_DATABASE_URL": settings.database_url,
            "BEACON_VAR_DIR": str(settings.var_dir),
            "BEACON_INTERNAL_TOKEN": token,
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::PendingDeprecationWarning",
        }
    )
    return env


def children(settings: Settings, model: Path, token: str) -> list[Child]:
    python = sys.executable
    listed = [
        Child("actions", [python, "-m", "bot.actionserver"]),
        Child(
            "rasa",
            [
                python,
                "-m",
                "rasa",
                "run",
                "--enable-api",
                "--auth-token",
                token,
                "--interface",
                "127.0.0.1",
                "--port",
                str(settings.rasa_port),
                "--model",
                str(model),
                "--endpoints",
                str(ROOT / "endpoints.yml"),
                "--credentials",
                str(ROOT / "credentials.yml"),
            ],
        ),
        Child("gateway", [python, "-m", "bot.gateway"]),
    ]
    if settings.telegram_enabled and settings.telegram_mode == "poll":
        # No public URL: long-poll Telegram and forward each update to the gateway's webhook.
        listed.append(Child("telegram-poll", [python, "-m", "bot.channels.telegram_poll"]))
    return listed


class Supervisor:
    def __init__(self, settings: Settings, model: Path) -> None:
        self.settings = settings
        self.token = settings.internal_token or secrets.token_urlsafe(32)
        self.env = child_env(settings, self.token)
        self.children = children(settings, model, self.token)
        self.stopping = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _health(self) -> int:
        url = f"http://127.0.0.1:{self.settings.port}/healthz"
        try:
            return httpx.get(url, timeout=5.0).status_code
        except httpx.HTTPError:
            return 0

    def _reap(self) -> None:
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is None:
                if now >= child.next_start:
                    child.start(self.env)
                continue
            code = process.poll()
            if code is None:
                if now - child.started_at > 120:
                    child.restarts = 0
                continue
            child.restarts += 1
            delay = min(MAX_BACKOFF, 2.0 ** min(child.restarts, 5))
            print(
                f"beacon: {child.name} exited with code {code}; restarting in {delay:.0f} s",
                file=sys.stderr,
            )
            child.process = None
            child.next_start = now + delay

    def shutdown(self) -> None:
        for child in reversed(self.children):
            child.stop()
        deadline = time.monotonic() + STOP_GRACE
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.process.wait()

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            child.start(self.env)
        started = time.monotonic()
        ready = False
        try:
            while not self.stopping:
                self._reap()
                if not ready:
                    if self._health() == 200:
                        ready = True
                        self._announce(time.monotonic() - started)
                    elif time.monotonic() - started > READY_TIMEOUT:
                        print("beacon: the stack did not become ready in time", file=sys.stderr)
                        return 1
                time.sleep(0.5)
        finally:
            print("beacon: stopping", file=sys.stderr)
            self.shutdown()
        return 0

    def _announce(self, seconds: float) -> None:
        url = self.settings.gateway_url
        print(
            "\n"
            f"Beacon is ready (in {seconds:.0f} s).\n"
            f"  Web chat:        {url}/chat\n"
            f"  Chat API:        POST {url}/webchat/messages\n"
            f"  Health, metrics: {url}/healthz  {url}/metrics\n"
            f"  Rasa (loopback): {self.settings.rasa_url}\n"
            f"  Actions:         {self.settings.actions_url}\n"
            "Open cases: `beacon queue list`. Stop with Ctrl-C.\n",
            flush=True,
        )


def busy_ports(settings: Settings) -> list[str]:
    """The configured ports that another process already listens on."""
    wanted = [
        ("BEACON_PORT", settings.host, settings.port),
        ("BEACON_RASA_PORT", "127.0.0.1", settings.rasa_port),
        ("BEACON_ACTIONS_PORT", "127.0.0.1", settings.actions_port),
    ]
    busy = []
    for name, host, port in wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(f"{name}={port}")
    return busy


def up(settings: Settings) -> int:
    """Prepares database and model, then supervises the stack until stopped."""
    from bot.db.migrate import upgrade
    from bot.model import ensure_model

    busy = busy_ports(settings)
    if busy:
        print(
            f"beacon: port already in use: {', '.join(busy)}. Is Beacon already running? "
            "Stop it, or choose other ports with these variables.",
            file=sys.stderr,
        )
        return 2
    upgrade(settings.database_url)
    model, how = ensure_model(settings)
    print(f"beacon: model {model.name} ({how})", file=sys.stderr)
    from bot.screening.model import get_model

    get_model()  # trains the screening model once, before the children need it
    return Supervisor(settings, model).run()
