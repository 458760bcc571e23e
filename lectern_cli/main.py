"""The ``lectern`` command line: argument parsing, dispatch, errors → exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from lectern_cli import config, exit_codes
from lectern_cli.output import Output
from shared.client import errors

EPILOG = "exit codes:\n" + "\n".join(
    f"  {code:<4} {text}" for code, text in exit_codes.DESCRIPTIONS.items()
)


def _common(defaults: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name.

    On subcommands they default to SUPPRESS, so one given before the command is kept.
    """
    parser = argparse.ArgumentParser(add_help=False)

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--url",
        default=default(config.default_url()),
        help="the gateway (env LECTERN_URL; default http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--token", default=default(None), help="bearer token (env LECTERN_TOKEN; default: stored)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print one JSON document on stdout (progress goes to stderr)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``lectern`` command."""
    parser = argparse.ArgumentParser(
        prog="lectern",
        description="Plan, generate, export and inspect Lectern courses.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(True)],
    )
    common = _common(False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gen = sub.add_parser(
        "generate",
        parents=[common],
        help="plan a course, accept or refine the plan, watch it being written",
        description="Plan a course (the plan streams in), accept or refine it, then watch "
        "lessons and assessments land until the course is ready.",
    )
    gen.add_argument("topic", help='what to learn, e.g. "Python for data analysis"')
    gen.add_argument("--level", choices=["beginner", "intermediate", "advanced"])
    gen.add_argument("--hours", type=float, help="total study time in hours")
    gen.add_argument("--expectations", help="what you hope to get out of it")
    gen.add_argument("--style", choices=["theory", "practice", "mixed"])
    gen.add_argument("--pace", choices=["intensive", "moderate", "relaxed"])
    gen.add_argument("--goal", choices=["academic", "corporate", "personal"])
    gen.add_argument("--language", help="course language (BCP 47, e.g. en, pt-BR)")
    gen.add_argument(
        "--auto", action="store_true", help="accept the first plan: no questions asked"
    )
    gen.add_argument(
        "--amqp",
        metavar="URL",
        help="talk to RabbitMQ directly (amqp://...) instead of the gateway",
    )
    gen.add_argument("--tenant", default="default", help="with --amqp: the tenant id")
    gen.add_argument(
        "--user",
        help="with --amqp: the user id the course belongs to (default: the stored login's)",
    )
    gen.add_argument(
        "--timeout", type=float, help="give up after this many seconds (default: never)"
    )
    gen.add_argument(
        "--idle-timeout",
        type=float,
        default=600.0,
        help="give up when no event comes for this many seconds (default 600)",
    )

    for name, text in (("login", "log in to an account"), ("register", "create an account")):
        p = sub.add_parser(name, parents=[common], help=text, description=text.capitalize())
        p.add_argument("--email", help="asked for when missing")
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from stdin (also env LECTERN_PASSWORD)",
        )
    sub.add_parser("logout", parents=[common], help="forget the stored token")
    sub.add_parser("whoami", parents=[common], help="the account behind the token")
    sub.add_parser("courses", parents=[common], help="list your courses")

    exp = sub.add_parser("export", parents=[common], help="download a course as one file")
    exp.add_argument("course", metavar="COURSE", help="course id")
    exp.add_argument(
        "--format",
        default="markdown",
        choices=["markdown", "html", "scorm", "moodle", "gift"],
        help="markdown (default), html (works offline), scorm (zip), moodle (XML), gift",
    )
    exp.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write ('-': stdout; default: server's name)",
    )

    pr = sub.add_parser("prompts", parents=[common], help="prompt administration (admin role)")
    prs = pr.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    pl = prs.add_parser("list", parents=[common], help="templates with labels and versions")
    pl.add_argument("--search", help="filter by name, task or description")
    ps = prs.add_parser("show", parents=[common], help="one template (or one version)")
    ps.add_argument("name", metavar="NAME")
    ps.add_argument("--version", type=int, help="show this version's messages")
    pd = prs.add_parser("diff", parents=[common], help="unified diff between two versions")
    pd.add_argument("name", metavar="NAME")
    pd.add_argument("v1", metavar="V1", type=int)
    pd.add_argument("v2", metavar="V2", type=int)
    plb = prs.add_parser("label", parents=[common], help="point a label at a version")
    plb.add_argument("name", metavar="NAME")
    plb.add_argument("version", metavar="VERSION", type=int)
    plb.add_argument("label", metavar="LABEL")

    st = sub.add_parser(
        "status", parents=[common], help="gateway readiness, services, queues and DLQs"
    )
    st.add_argument(
        "--amqp",
        metavar="URL",
        default=config.default_amqp_url(),
        help="RabbitMQ (env LECTERN_AMQP_URL or AMQP_URL; default local guest)",
    )
    return parser


def hint(exc: errors.LecternError, args: argparse.Namespace) -> str:
    """The server's message plus what to do about it."""
    message = exc.message
    if isinstance(exc, errors.ServiceDown):
        if exc.url.startswith("amqp"):
            return (
                f"{message}. Is RabbitMQ running? Start Lectern with `make run` (in its "
                "checkout), or give the right --amqp URL."
            )
        return (
            f"{message}. Is the gateway running? Start Lectern with `make run` (in its "
            "checkout), or point --url / LECTERN_URL at a running gateway."
        )
    if isinstance(exc, errors.ServiceUnavailable):
        return f"{message} (`lectern status` shows which service is down)"
    if isinstance(exc, errors.Unauthorized):
        return f"{message}: run `lectern login` (or `lectern logout` to start over as a guest)"
    if isinstance(exc, errors.Forbidden):
        return f"{message}: log in with an account that has it (`lectern login`)"
    if isinstance(exc, errors.RateLimited) and exc.retry_after:
        return f"{message} (retry after {exc.retry_after:g} s)"
    if isinstance(exc, errors.JobFailed):
        retry = " (retrying may help)" if exc.retryable else ""
        return f"the job failed: {message}{retry}"
    return message


async def _dispatch(args: argparse.Namespace, out: Output) -> int:
    from lectern_cli import commands

    if args.command == "generate":
        return await _generate(args, out)
    if args.command == "status":
        from lectern_cli import status

        return await status.run(args, out)
    if args.command in ("login", "register"):
        return await commands.login(args, out, register=args.command == "register")
    handler = {
        "logout": commands.logout,
        "whoami": commands.whoami,
        "courses": commands.courses,
        "export": commands.export,
        "prompts": commands.prompts,
    }[args.command]
    return await handler(args, out)


async def _generate(args: argparse.Namespace, out: Output) -> int:
    from lectern_cli import generate
    from lectern_cli.commands import authed

    if args.amqp:
        from shared.client.broker import LecternBroker

        stored = config.stored_credentials(args.url)
        user = args.user or (stored or {}).get("user_id")
        async with LecternBroker(args.amqp, tenant_id=args.tenant, user_id=user) as broker:
            backend: generate.Backend = generate.BrokerBackend(
                broker, args.url if user else None, args.timeout, args.idle_timeout
            )
            return await generate.run(backend, args, out)
    async with await authed(args, out, guest_ok=True) as client:
        backend = generate.GatewayBackend(client, args.timeout, args.idle_timeout)
        return await generate.run(backend, args, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lectern`` with ``argv`` (default: the process's); the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error
    # the AMQP libraries log failed connects themselves; the error message says it all
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    out = Output(args.json)
    try:
        return asyncio.run(_dispatch(args, out))
    except KeyboardInterrupt:
        out.error("interrupted", code=exit_codes.INTERRUPTED, kind="Interrupted")
        return exit_codes.INTERRUPTED
    except errors.LecternError as exc:
        from lectern_cli.generate import UsageError

        code = exit_codes.USAGE if isinstance(exc, UsageError) else exit_codes.for_error(exc)
        out.error(hint(exc, args), code=code, kind=type(exc).__name__, status=exc.status)
        return code
    except OSError as exc:  # writing the export, the credentials file
        out.error(str(exc), code=exit_codes.FAILED, kind="OSError")
        return exit_codes.FAILED


if __name__ == "__main__":
    sys.exit(main())
