"""The ``beacon`` command.

Commands that only touch the database or screening import neither Rasa nor
TensorFlow, so they start in well under a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from bot.settings import get_settings


def cmd_up(_args: argparse.Namespace) -> int:
    from bot import supervisor

    return supervisor.up(get_settings())


def cmd_gateway(_args: argparse.Namespace) -> int:
    from bot import gateway

    gateway.main()
    return 0


def cmd_actions(_args: argparse.Namespace) -> int:
    from bot import actionserver

    actionserver.main()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bot.model import ensure_model
    from bot.screening.model import get_model

    path, how = ensure_model(get_settings(), force=args.force)
    print(f"{path} ({how})")
    get_model()
    print("screening model ready")
    return 0


def cmd_model_path(_args: argparse.Namespace) -> int:
    from bot.model import model_path

    print(model_path(get_settings()))
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade

    upgrade()
    return 0


def cmd_queue_list(args: argparse.Namespace) -> int:
    from bot.db import session_scope
    from bot.db.migrate import upgrade
    from bot.handoff.queue import list_open

    upgrade()
    with session_scope() as session:
        cases = list_open(session)
    if args.json:
        print(json.dumps(cases, ensure_ascii=False, indent=2))
        return 0
    if not cases:
        print("No open cases.")
        return 0
    row = "{:>5}  {:8}  {:8}  {:4}  {:8}  {:32}  {}"
    print(row.format("id", "urgency", "status", "lang", "channel", "waiting since", "indicators"))
    for case in cases:
        print(
            row.format(
                case["id"],
                case["urgency"],
                case["status"],
                case["language"] or "-",
                case["channel"],
                case["waiting_since"] or "-",
                ", ".join(case["indicators"]),
            )
        )
    return 0


def _jsonl_line(raw: str) -> dict[str, object]:
    from bot.screening import ScreeningContext, screen

    try:
        item = json.loads(raw)
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError("needs an object with a string 'text'")
        context = ScreeningContext(**(item.get("context") or {}))
    except (ValueError, TypeError) as exc:
        return {"id": None, "error": f"bad input line: {exc}"}
    result = screen(item["text"], context)
    return {
        "id": item.get("id"),
        "language": result.language,
        "indicators": list(result.indicators),
        "urgency": result.urgency,
        "reporter": result.reporter,
    }


def cmd_screen(args: argparse.Namespace) -> int:
    from bot.screening import ScreeningContext, screen

    if args.jsonl:
        failed = False
        for raw in sys.stdin:
            if raw.strip():
                line = _jsonl_line(raw)
                failed = failed or "error" in line
                print(json.dumps(line, ensure_ascii=False), flush=True)
        return 1 if failed else 0
    if args.text is None:
        print("beacon screen: give a text, or --jsonl to read JSON lines", file=sys.stderr)
        return 2
    context = ScreeningContext(
        language_code=args.language_code,
        calling_code=args.calling_code,
        conversation_language=args.conversation_language,
    )
    result = screen(args.text, context)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return 0
    print(
        f"language:   {result.language} ({result.language_confidence:.2f})"
        + ("  [converted from Zawgyi]" if result.zawgyi else "")
    )
    print(f"urgency:    {result.urgency}")
    print(f"reporter:   {result.reporter}")
    print(f"indicators: {', '.join(result.indicators) or '-'}")
    for evidence in result.evidence:
        where = (
            f"«{evidence.text}» at {evidence.start}-{evidence.end}"
            if evidence.source == "pattern"
            else f"model, p={evidence.score:.2f}"
        )
        print(f"  {evidence.label:20} {where}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.screening.evaluate import format_table, run

    if args.train_only:
        os.environ["BEACON_SCREENING_TRAIN_ONLY"] = "1"
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print(f"beacon eval: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        report = run(files, Path(args.out), use_model=not args.no_model)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"beacon eval: bad labelled data: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"written: {args.out}/eval.json, {args.out}/eval-recall.png")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat_cli import run_chat

    return run_chat(args.url or get_settings().gateway_url, args.sender)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon", description="Beacon: a multilingual hotline assistant."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    add("up", cmd_up, "start the gateway, Rasa and the action server; stop with Ctrl-C")
    add("gateway", cmd_gateway, "run the gateway alone")
    add("actions", cmd_actions, "run the action server alone")
    train = add("train", cmd_train, "train the model if its inputs changed")
    train.add_argument("--force", action="store_true", help="train even if a model exists")
    add("model-path", cmd_model_path, "print where the model for the current inputs lives")
    chat = add("chat", cmd_chat, "talk to a running gateway from the terminal")
    chat.add_argument("--url", help="gateway URL (default: from BEACON_PORT)")
    chat.add_argument("--sender", help="conversation id (default: a new random one)")
    screen = add("screen", cmd_screen, "screen a message and print what was found")
    screen.add_argument("text", nargs="?")
    screen.add_argument("--json", action="store_true", help="print JSON")
    screen.add_argument(
        "--jsonl",
        action="store_true",
        help='read {"id", "text", "context"?} lines on stdin, write one JSON line each',
    )
    screen.add_argument("--language-code", help="Telegram language_code prior")
    screen.add_argument("--calling-code", help="SMS sender's calling code prior, e.g. 62")
    screen.add_argument("--conversation-language", help="the conversation's language so far")

    evaluation = add("eval", cmd_eval, "evaluate screening on labelled JSON-lines files")
    evaluation.add_argument("files", nargs="+", metavar="FILE")
    evaluation.add_argument("--out", default="var/eval", help="folder for eval.json and the chart")
    evaluation.add_argument("--no-model", action="store_true", help="patterns only")
    evaluation.add_argument(
        "--train-only",
        action="store_true",
        help="train the model without the dev split (to measure on dev while tuning)",
    )

    db = sub.add_parser("db", help="database commands").add_subparsers(dest="db", required=True)
    upgrade = db.add_parser("upgrade", help="apply the schema migrations")
    upgrade.set_defaults(handler=cmd_db_upgrade)

    queue = sub.add_parser("queue", help="the handoff queue").add_subparsers(
        dest="queue", required=True
    )
    listing = queue.add_parser("list", help="open cases, most urgent first")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=cmd_queue_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
