"""``lectern`` commands on the gateway: accounts, courses, export, prompt administration."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from lectern_cli import config, exit_codes
from lectern_cli.output import Output, table
from shared.client.errors import Unauthorized
from shared.client.http import LecternHTTP


def token_for(args: argparse.Namespace) -> str | None:
    """The token to use: ``--token``, then ``LECTERN_TOKEN``, then the stored one."""
    if getattr(args, "token", None):
        return str(args.token)
    if os.environ.get("LECTERN_TOKEN"):
        return os.environ["LECTERN_TOKEN"]
    stored = config.stored_credentials(args.url)
    return str(stored["access_token"]) if stored else None


async def authed(args: argparse.Namespace, out: Output, *, guest_ok: bool) -> LecternHTTP:
    """A client with a token; with ``guest_ok`` a guest is started (and remembered) if none."""
    client = LecternHTTP(args.url, token_for(args))
    if client.token is None:
        if not guest_ok:
            await client.aclose()
            raise Unauthorized(f"not logged in to {args.url}")
        try:
            token = await client.guest()
        except BaseException:
            await client.aclose()
            raise
        path = config.store_credentials(args.url, token)
        out.say(
            f"(continuing as a new guest; token kept in {path}; `lectern login` to use an account)"
        )
    return client


def _read_password(args: argparse.Namespace, out: Output) -> str:
    if os.environ.get("LECTERN_PASSWORD"):
        return os.environ["LECTERN_PASSWORD"]
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass("Password: ", stream=out.stderr)


def _read_email(args: argparse.Namespace, out: Output) -> str:
    if args.email:
        return str(args.email)
    out.stream_text("Email: ")
    email = sys.stdin.readline().strip()
    out.line_ended()
    return email


async def login(args: argparse.Namespace, out: Output, *, register: bool = False) -> int:
    """``lectern login`` / ``lectern register``: store the account's token for ``--url``."""
    email = _read_email(args, out)
    password = _read_password(args, out)
    # registering as the stored guest keeps the guest's courses
    async with LecternHTTP(args.url, token_for(args) if register else None) as client:
        if register:
            token = await client.register(email, password)
        else:
            token = await client.login(email, password)
        me = await client.me()
    path = config.store_credentials(args.url, token, email=email)
    verb = "Registered" if register else "Logged in"
    out.result(
        {
            "url": args.url,
            "user_id": me["user_id"],
            "email": me["email"],
            "role": me["role"],
            "credentials": str(path),
        },
        f"{verb} as {me['email']} ({me['role']}) on {args.url}; token kept in {path}",
    )
    return exit_codes.OK


async def logout(args: argparse.Namespace, out: Output) -> int:
    """``lectern logout``: forget the token stored for ``--url``."""
    removed = config.forget_credentials(args.url)
    out.result(
        {"url": args.url, "removed": removed},
        f"Forgot the token for {args.url}" if removed else f"No token stored for {args.url}",
    )
    return exit_codes.OK


async def whoami(args: argparse.Namespace, out: Output) -> int:
    """``lectern whoami``: the account behind the token."""
    async with await authed(args, out, guest_ok=False) as client:
        me = await client.me()
    kind = "guest" if me["is_guest"] else me["email"]
    out.result(me, f"{kind} ({me['role']}), user {me['user_id']} on {args.url}")
    return exit_codes.OK


async def courses(args: argparse.Namespace, out: Output) -> int:
    """``lectern courses``: your courses, newest first."""
    async with await authed(args, out, guest_ok=True) as client:
        found = await client.courses()
    rows = [
        [
            c["course_id"],
            c["status"],
            f"{c.get('lessons_done', 0)}/{c.get('lessons_total', 0)}",
            c.get("title") or c.get("topic") or "",
        ]
        for c in found
    ]
    text = table(rows, ["COURSE", "STATUS", "LESSONS", "TITLE"]) if rows else "No courses yet."
    out.result(found, text)
    return exit_codes.OK


async def export(args: argparse.Namespace, out: Output) -> int:
    """``lectern export COURSE --format F [-o FILE]``: the course as one file."""
    async with await authed(args, out, guest_ok=True) as client:
        exported = await client.export(args.course, args.format)
    if args.output == "-":
        sys.stdout.buffer.write(exported.content)
        sys.stdout.buffer.flush()
        return exit_codes.OK
    path = Path(args.output or exported.filename)
    await asyncio.to_thread(path.write_bytes, exported.content)
    out.result(
        {
            "course_id": args.course,
            "format": args.format,
            "path": str(path),
            "bytes": len(exported.content),
            "media_type": exported.media_type,
        },
        f"Wrote {path} ({len(exported.content)} bytes, {args.format})",
    )
    return exit_codes.OK


async def prompts(args: argparse.Namespace, out: Output) -> int:
    """``lectern prompts list|show|diff|label`` (admin role)."""
    async with await authed(args, out, guest_ok=False) as client:
        if args.prompts_command == "list":
            found = await client.prompts(args.search or "")
            rows = [
                [
                    t["name"],
                    t.get("task") or "",
                    t.get("versions", 0),
                    " ".join(f"{k}={v}" for k, v in sorted(t.get("labels", {}).items())),
                ]
                for t in found
            ]
            out.result(found, table(rows, ["NAME", "TASK", "VERSIONS", "LABELS"]))
        elif args.prompts_command == "show":
            if args.version:
                version = await client.prompt_version(args.name, args.version)
                out.result(version, _version_text(args.name, version))
            else:
                template = await client.prompt(args.name)
                out.result(template, _template_text(template))
        elif args.prompts_command == "diff":
            diff = await client.prompt_diff(args.name, args.v1, args.v2)
            text = "(identical)" if diff.get("identical") else str(diff.get("diff", ""))
            out.result(diff, text)
        else:
            moved = await client.move_label(args.name, args.label, args.version)
            out.result(
                moved, f"{args.name}: label {args.label} now points at version {args.version}"
            )
    return exit_codes.OK


def _template_text(template: dict[str, Any]) -> str:
    labels = template.get("labels") or {}
    lines = [
        f"{template.get('name')}  ({template.get('task') or 'no task'})",
        str(template.get("description") or ""),
        "labels: " + (", ".join(f"{k} \u2192 {v}" for k, v in sorted(labels.items())) or "none"),
        "",
    ]
    rows = [
        [
            v.get("version"),
            v.get("created_by") or "",
            v.get("created_at") or "",
            v.get("change_note"),
        ]
        for v in template.get("versions", [])
    ]
    lines.append(table(rows, ["VERSION", "AUTHOR", "CREATED", "CHANGE NOTE"]))
    return "\n".join(lines)


def _version_text(name: str, version: dict[str, Any]) -> str:
    lines = [f"{name} version {version.get('version')}: {version.get('change_note', '')}", ""]
    for message in version.get("messages", []):
        lines += [f"[{message.get('role')}]", str(message.get("content", "")), ""]
    variables = version.get("variables") or {}
    if variables:
        lines.append("variables: " + ", ".join(sorted(variables)))
    return "\n".join(lines)
