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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.handoff.casework import Serves

from bot.settings import get_settings

#: Console roles (bot.db.models.ROLES), repeated so that parsing imports no database code.
ROLE_CHOICES = ("responder", "supervisor", "admin")


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


def _print_cases(cases: list[dict[str, Any]]) -> None:
    if not cases:
        print("No open cases.")
        return
    row = "{:>5}  {:8}  {:8}  {:4}  {:8}  {:4}  {:>8}  {:12}  {}"
    print(
        row.format(
            "id", "urgency", "status", "lang", "channel", "ofc", "waiting", "with", "indicators"
        )
    )
    for case in cases:
        waited = case.get("waiting_seconds")
        print(
            row.format(
                str(case["id"]),
                str(case["urgency"]),
                str(case["status"]),
                str(case["language"] or "-"),
                str(case["channel"]),
                str(case.get("office") or "-"),
                f"{int(waited) // 60} min" if isinstance(waited, int) else "-",
                str(case.get("claimed_by") or "-"),
                ", ".join(str(i) for i in case["indicators"]),
            )
        )


def _as_responder(session: Session, username: str | None) -> tuple[Serves, str]:
    from sqlalchemy import select

    from bot.db.models import Responder
    from bot.handoff.casework import Serves

    if not username:
        raise SystemExit("say who you are: --as USERNAME (see `beacon responder add`)")
    responder = session.execute(
        select(Responder).where(Responder.username == username, Responder.is_active.is_(True))
    ).scalar_one_or_none()
    if responder is None:
        raise SystemExit(f"no active responder {username!r}")
    return Serves.of(responder), responder.ui_language


def _queue_op(args: argparse.Namespace) -> int:
    """Runs one queue command as a responder; prints JSON or a readable line."""
    from bot.console import views
    from bot.db import session_scope
    from bot.db.migrate import upgrade
    from bot.db.models import utcnow
    from bot.handoff import casework
    from bot.handoff.queue import list_open

    upgrade()
    out: Any
    try:
        with session_scope() as session:
            if args.queue == "list" and not args.as_:
                out = list_open(session)
            else:
                serves, language = _as_responder(session, args.as_)
                if args.queue == "list":
                    cases = casework.visible_cases(session, serves)
                    out = views.summaries(session, cases, serves, language, utcnow())
                elif args.queue == "show":
                    case = casework.view(session, args.case_id, serves)
                    out = views.case_detail(session, case, serves, language)
                elif args.queue == "take-next":
                    case = casework.take_next(session, serves)
                    [out] = views.summaries(session, [case], serves, language, utcnow())
                elif args.queue == "reply":
                    sent = casework.reply(session, args.case_id, serves, args.text)
                    out = {"id": sent.id, "case_id": args.case_id, "status": sent.status}
                elif args.queue == "resolve":
                    case = casework.resolve(session, args.case_id, serves)
                    [out] = views.summaries(session, [case], serves, language, utcnow())
                else:  # pragma: no cover - argparse allows only the above
                    raise SystemExit(2)
    except casework.CaseworkError as exc:
        message = {
            "error_not_found": "no such case",
            "error_nothing_to_take": "nothing is waiting for you",
            "error_conflict": "the case is not yours or not in a state that allows this",
            "error_forbidden": "the case is outside your languages and offices",
        }.get(exc.kind, "not possible")
        print(json.dumps({"error": message}) if args.json else message, file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    elif args.queue == "list":
        _print_cases(out)
    elif args.queue == "show":
        _print_case(out)
    else:
        print(json.dumps(out, ensure_ascii=False))
    return 0


def _print_case(case: dict[str, Any]) -> None:
    _print_cases([case])
    print(f"reporter: {case['reporter']}  country: {case['country'] or '-'}")
    for message in case["messages"]:
        print(f"[{message['at']}] {message['author']}: {message['text']}")
    for note in case["notes"]:
        print(f"[{note['at']}] note by {note['author']}: {note['text']}")


def _account_error(exc: Exception) -> str:
    from bot.i18n import console_text

    return str(exc) or console_text("en", getattr(exc, "kind", "error_account_invalid"))


def cmd_responder_add(args: argparse.Namespace) -> int:
    import getpass

    from bot.console.accounts import AccountError, create
    from bot.db import session_scope
    from bot.db.migrate import upgrade

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (12 characters or more): ")
        if getpass.getpass("Again: ") != password:
            print("The passwords differ.", file=sys.stderr)
            return 2
    upgrade()

    def split(raw: str | None) -> list[str]:
        return [part for part in (raw or "").split(",") if part.strip()]

    try:
        with session_scope() as session:
            responder, _ = create(
                session,
                "cli",
                args.username,
                password=password,
                display_name=args.name or "",
                languages=split(args.languages),
                offices=split(args.offices),
                ui_language=args.ui_language,
                role=args.role,
            )
            print(
                f"{responder.role} {responder.username} created "
                f"(languages: {', '.join(responder.languages) or 'all'}; "
                f"offices: {', '.join(responder.offices) or 'all'})"
            )
    except AccountError as exc:
        print(f"cannot create the account: {_account_error(exc)}", file=sys.stderr)
        return 2
    return 0


def cmd_responder_set_role(args: argparse.Namespace) -> int:
    from bot.console.accounts import AccountError, change
    from bot.db import session_scope
    from bot.db.migrate import upgrade

    upgrade()
    try:
        with session_scope() as session:
            responder = change(session, "cli", args.username, role=args.role)
            print(f"{responder.username} is now {responder.role}")
    except AccountError as exc:
        print(f"cannot change the role: {_account_error(exc)}", file=sys.stderr)
        return 2
    return 0


def cmd_block(args: argparse.Namespace) -> int:
    from bot.db import session_scope
    from bot.db.migrate import upgrade
    from bot.handoff import blocklist

    upgrade()
    with session_scope() as session:
        if args.block == "lift":
            lifted = blocklist.lift_by_id(session, args.block_id, "cli")
            if lifted is None:
                print(f"no block {args.block_id} in force", file=sys.stderr)
                return 3
            print(f"block {lifted.id} lifted")
            return 0
        blocks = [blocklist.describe(b) for b in blocklist.in_force_now(session)]
    if args.json:
        print(json.dumps(blocks))
    elif not blocks:
        print("No sender is blocked.")
    for b in [] if args.json else blocks:
        until = b["until"] or "permanent"
        print(
            f"{b['id']:>5}  {b['channel']:8}  {b['reason']:13}  until {until}  "
            f"by {b['by']} at {b['at']}  case {b['case_id'] or '-'}"
        )
    return 0


def cmd_consent(args: argparse.Namespace) -> int:
    from bot.db import session_scope
    from bot.db.migrate import upgrade
    from bot.privacy import consent

    upgrade()
    with session_scope() as session:
        shown = [consent.describe(c) for c in consent.consents_of(session, args.case_id)]
    for c in shown:
        c.pop("exports")
    if args.json:
        print(json.dumps(shown, ensure_ascii=False))
        return 0
    if not shown:
        print(f"No consent recorded on case {args.case_id}: export is blocked.")
    for c in shown:
        state = (
            f"withdrawn {c['withdrawn_at']} by {c['withdrawn_by']}"
            if c["withdrawn_at"]
            else "valid"
        )
        print(
            f"{c['id']:>5}  {c['basis']:14}  {c['given_by']:8}  {c['recipient_kind']:8}  "
            f"{c['recipient']}  [{', '.join(c['data'])}]  by {c['recorded_by']} at "
            f"{c['recorded_at']}  {state}"
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


def cmd_sms_report(args: argparse.Namespace) -> int:
    from bot.channels.sms_report import write_report

    over = write_report(Path(args.output), args.target)
    print(f"written: {args.output} ({len(over)} over {args.target} segments)")
    for cell in over:
        print(f"  {cell.response} [{cell.language}]: {cell.segments.segments} segments")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat_cli import run_chat

    return run_chat(args.url or get_settings().gateway_url, args.sender)


def cmd_keys_new(_args: argparse.Namespace) -> int:
    from bot.privacy.keys import new_key

    print(new_key())
    return 0


def cmd_keys_rotate(_args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade
    from bot.privacy.keys import rotate

    upgrade()
    counts = rotate()
    print(
        "re-encrypted with the first key of BEACON_SECRET_KEY: "
        + ", ".join(f"{table} {n}" for table, n in counts.items())
    )
    print("when this has run everywhere, remove the old key from BEACON_SECRET_KEY")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade
    from bot.privacy.retention import purge

    upgrade()
    report = purge(dry_run=args.dry_run, actor="cli")
    settings = get_settings()
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {len(report.unescalated)} conversations that never reached a person "
        f"(older than {settings.retention_unescalated_days} days) and {len(report.resolved)} "
        f"resolved cases (older than {settings.retention_resolved_days} days); "
        f"{report.contacts} contacts removed"
    )
    if not args.dry_run and (report.unescalated or report.resolved):
        print("the running gateway empties the assistant's copies of these conversations")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from bot.db import session_scope
    from bot.db.migrate import upgrade
    from bot.privacy.audit import trail

    upgrade()
    with session_scope() as session:
        events = trail(session, args.case_id)
    if not events:
        print(f"no audit trail for case {args.case_id}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(events, ensure_ascii=False))
        return 0
    for e in events:
        moved = f" {e['from']} -> {e['to']}" if e["from"] != e["to"] else ""
        detail = f" {json.dumps(e['detail'], ensure_ascii=False)}" if e["detail"] else ""
        print(f"{e['at']}  {e['actor']:<16} {e['action']}{moved}{detail}")
    return 0


def cmd_telegram(args: argparse.Namespace) -> int:
    from bot import logs
    from bot.channels import telegram_poll

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    run = {
        "set-webhook": telegram_poll.set_webhook,
        "poll": telegram_poll.poll,
        "info": telegram_poll.info,
    }[args.telegram]
    return run(settings)


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

    sms_report = add(
        "sms-report", cmd_sms_report, "write the SMS segments of every response and language"
    )
    sms_report.add_argument("--output", default="docs/sms-segments.md", help="Markdown file")
    sms_report.add_argument("--target", type=int, default=3, help="segments a reply may take")

    keys = sub.add_parser("keys", help="encryption keys").add_subparsers(dest="keys", required=True)
    keys.add_parser("new", help="print a new Fernet key").set_defaults(handler=cmd_keys_new)
    keys.add_parser(
        "rotate", help="re-encrypt personal data with the first key of BEACON_SECRET_KEY"
    ).set_defaults(handler=cmd_keys_rotate)
    purge_cmd = add("purge", cmd_purge, "delete what the retention settings no longer keep")
    purge_cmd.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge_cmd.add_argument("--json", action="store_true", help="print JSON")
    audit = add("audit", cmd_audit, "show who did what to a case, and when")
    audit.add_argument("case_id", type=int)
    audit.add_argument("--json", action="store_true", help="print JSON")

    db = sub.add_parser("db", help="database commands").add_subparsers(dest="db", required=True)
    upgrade = db.add_parser("upgrade", help="apply the schema migrations")
    upgrade.set_defaults(handler=cmd_db_upgrade)

    queue = sub.add_parser("queue", help="the handoff queue").add_subparsers(
        dest="queue", required=True
    )

    def queue_cmd(name: str, help_: str, case: bool = False) -> argparse.ArgumentParser:
        p = queue.add_parser(name, help=help_, description=help_)
        if case:
            p.add_argument("case_id", type=int)
        p.add_argument("--as", dest="as_", metavar="USERNAME", help="the responder acting")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=_queue_op)
        return p

    queue_cmd("list", "open cases in queue order (--as: the cases that responder sees)")
    queue_cmd("show", "one case with its transcript (the read is audited)", case=True)
    queue_cmd("take-next", "claim the most urgent case you can serve")
    queue_cmd("reply", "write to the person (relayed on their channel)", case=True).add_argument(
        "text"
    )
    queue_cmd("resolve", "close a case; the bot answers the person again", case=True)

    responder = sub.add_parser("responder", help="responder accounts").add_subparsers(
        dest="responder", required=True
    )
    add_responder = responder.add_parser("add", help="create a console account")
    add_responder.add_argument("username")
    add_responder.add_argument("--name", help="display name")
    add_responder.add_argument("--languages", help="comma-separated, e.g. th,en (default: all)")
    add_responder.add_argument("--offices", help="comma-separated ISO codes, e.g. KH,TH")
    add_responder.add_argument("--ui-language", default="en", help="console language (en, id, th)")
    add_responder.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    add_responder.add_argument(
        "--role",
        choices=ROLE_CHOICES,
        default="responder",
        help="supervisor: every case of their offices; admin: manages accounts, sees every case",
    )
    add_responder.set_defaults(handler=cmd_responder_add)
    set_role = responder.add_parser("set-role", help="change an account's role (audited)")
    set_role.add_argument("username")
    set_role.add_argument("role", choices=ROLE_CHOICES)
    set_role.set_defaults(handler=cmd_responder_set_role)

    block = sub.add_parser("block", help="blocked senders").add_subparsers(
        dest="block", required=True
    )
    block_list = block.add_parser("list", help="the blocks in force (no addresses shown)")
    block_list.add_argument("--json", action="store_true", help="print JSON")
    block_list.set_defaults(handler=cmd_block)
    block_lift = block.add_parser("lift", help="lift a block before it ends (audited)")
    block_lift.add_argument("block_id", type=int)
    block_lift.set_defaults(handler=cmd_block)

    consents = sub.add_parser("consent", help="consent to share a case").add_subparsers(
        dest="consent", required=True
    )
    consent_list = consents.add_parser(
        "list", help="who may receive a case's details, on what basis, which data"
    )
    consent_list.add_argument("case_id", type=int)
    consent_list.add_argument("--json", action="store_true", help="print JSON")
    consent_list.set_defaults(handler=cmd_consent)

    telegram = sub.add_parser("telegram", help="the Telegram channel").add_subparsers(
        dest="telegram", required=True
    )
    telegram.add_parser(
        "set-webhook", help="register <BEACON_PUBLIC_URL>/telegram/webhook with Telegram"
    ).set_defaults(handler=cmd_telegram)
    telegram.add_parser(
        "poll", help="long-poll Telegram and forward to the local gateway (no public URL)"
    ).set_defaults(handler=cmd_telegram)
    telegram.add_parser(
        "info", help="the bot's name, its webhook and the updates Telegram holds"
    ).set_defaults(handler=cmd_telegram)
    return parser


def load_env_file() -> None:
    """Reads ``.env`` (or ``BEACON_ENV_FILE``; empty: none) into the environment.

    Variables already set win, so a deployment's own environment overrides the file.
    """
    from dotenv import load_dotenv

    from bot.settings import ROOT

    path = os.environ.get("BEACON_ENV_FILE", str(ROOT / ".env"))
    if path and Path(path).is_file():
        load_dotenv(path, override=False)


def main(argv: Sequence[str] | None = None) -> int:
    load_env_file()
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
