"""A fault-injecting, OpenAI-compatible LLM server for chaos tests (a standalone process).

    python -m tests.support.fault_llm --port 18080 --ttft 0.2 --latency 0.8 \\
        --rate-429 0.05 --rate-5xx 0.05 --cut-stream 0.05 --invalid-json 0.02 \\
        --timeout-rate 0.02 --log /tmp/fault-llm.jsonl

It answers ``POST /v1/chat/completions`` (streamed or not) with what the built-in
offline model would answer for the Lectern task it recognises: the task is read from
the system message (the shipped templates' opening words), so the bodies are valid for
every task (plans, modules JSON, lessons, quizzes, exercises). On top of that, each
request may get one fault, drawn with the configured rates:

- ``429``: ``Retry-After`` (seconds) and no body worth reading;
- ``5xx``: 500, 502 or 503;
- ``timeout``: nothing for ``--hang`` seconds, before the headers or mid-stream;
- ``cut``: the stream stops mid-way, either dropping the connection (an incomplete
  chunked body) or ending the body cleanly without a finish reason or ``[DONE]`` (as a
  proxy giving up may); ``--cut-mode`` picks one or alternates (``mixed``);
- ``invalid_json``: a JSON task answers JSON cut in half (the client's repair round asks
  again; a repair request is never broken, or the course would fail by design).

Every request is recorded (one JSON line in ``--log``, and ``GET /_log``): when it came,
when a stream's first content chunk was written (``t_first``), when it ended, the task,
the Lectern step it is for (course topic and module/lesson order, read from the
prompt's ``key: value`` brief), and the outcome. ``POST /_faults``
changes the rates while running (JSON with the option names, ``_`` for ``-``), and
``cut_first`` (``{"write_lesson": 2}``) cuts the first N streams of each step of a task
whatever the rates, for focused tests (``mixed``: the first is dropped, the second ends
cleanly, and so on).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import string
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAULTS = ("429", "5xx", "timeout", "cut", "invalid_json")
REPAIR_MARKER = "Your previous answer was not valid JSON"
VERIFY_MARKER = "Your previous exercise failed verification"
_KEY_RE = {
    "topic": re.compile(r"^(?:course_)?topic:\s*(.+?)\s*$", re.MULTILINE),
    "order": re.compile(r"^(?:module|lesson)_order:\s*(\d+)", re.MULTILINE),
}


@dataclass
class Faults:
    """Fault rates (each a probability per request) and timing."""

    ttft: float = 0.0  # seconds before the first chunk
    latency: float = 0.0  # seconds spread over the rest of a stream
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    timeout_rate: float = 0.0
    cut_stream: float = 0.0
    invalid_json: float = 0.0
    retry_after: float = 1.0
    hang: float = 30.0
    cut_mode: str = "mixed"  # abort, clean or mixed
    cut_first: dict[str, int] = field(default_factory=dict)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (field names); unknown names are an error."""
        for name, value in changes.items():
            if not hasattr(self, name):
                raise ValueError(f"unknown fault setting {name!r}")
            if name == "cut_mode" and value not in ("abort", "clean", "mixed"):
                raise ValueError("cut_mode is abort, clean or mixed")
            converted = {"cut_first": dict, "cut_mode": str}.get(name, float)
            setattr(self, name, converted(value))


@dataclass
class Record:
    """One request the server answered (or failed on purpose)."""

    id: int
    t_start: float  # wall clock (time.time()): comparable with PostgreSQL's now()
    t_end: float | None
    task: str | None
    topic: str | None
    order: int | None
    step: str | None
    stream: bool
    repair: bool
    verification: bool
    outcome: str  # ok, 429, 5xx, timeout, cut, invalid_json, disconnected
    chars: int = 0
    prompt_sha: str = ""
    # wall clock when the first content chunk of a stream was handed to the server
    # (benchmarks measure from it to the chunk reaching a client)
    t_first: float | None = None


# --------------------------------------------------------------------------- tasks


def _task_patterns() -> list[tuple[re.Pattern[str], int, str]]:
    """(the system message as a pattern, its literal length, task) per shipped template.

    The whole template must match the start of a request's system message (structured
    calls append their JSON instruction after it); among matches the template with the
    most literal text wins, so a variant that adds a paragraph (grounded in sources) is
    told apart from the plain one.
    """
    from shared.llm.library import LIBRARY

    patterns = []
    for template in LIBRARY.values():
        for message in template.messages:
            if message.role == "system":
                parts, literal = [], 0
                for text, field_name, _, _ in string.Formatter().parse(message.content):
                    parts.append(re.escape(text))
                    literal += len(text)
                    if field_name is not None:
                        parts.append("(?:.*?)")
                compiled = re.compile("".join(parts).strip(), re.DOTALL)
                patterns.append((compiled, literal, template.task))
                break
    return sorted(patterns, key=lambda p: p[1], reverse=True)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class Identify:
    """Which Lectern task and step a request is for, from its messages."""

    def __init__(self) -> None:
        self.patterns = _task_patterns()

    def task(self, messages: list[dict[str, Any]]) -> str | None:
        system = next((_text(m.get("content")) for m in messages if m.get("role") == "system"), "")
        system = system.strip()
        for pattern, _, task in self.patterns:
            if pattern.match(system):
                return task
        return None

    def step(self, task: str | None, messages: list[dict[str, Any]]) -> dict[str, Any]:
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        first = users[0] if users else ""
        topic = _KEY_RE["topic"].search(first)
        order = _KEY_RE["order"].search(first)
        found_topic = topic.group(1) if topic else None
        found_order = int(order.group(1)) if order else None
        step = None
        if task and found_topic:
            step = f"{found_topic}|{task}" + (f"|{found_order}" if found_order else "")
        return {
            "task": task,
            "topic": found_topic,
            "order": found_order,
            "step": step,
            "repair": any(REPAIR_MARKER in u for u in users),
            "verification": any(VERIFY_MARKER in u for u in users),
        }


def answer_text(task: str | None, messages: list[dict[str, Any]]) -> str:
    """The offline model's answer to ``messages`` for ``task``."""
    from shared.llm.offline import generate, task_marker

    marked = [dict(m) for m in messages]
    if task is not None:
        for message in marked:
            if message.get("role") == "system":
                message["content"] = f"{task_marker(task)}\n{_text(message.get('content'))}"
                break
    return generate(marked)


def pieces(text: str, words: int = 3) -> list[str]:
    """``text`` in pieces of a few words (joined, they give ``text`` back)."""
    tokens = re.findall(r"\s+|\S+\s*", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [""]


# --------------------------------------------------------------------------- server


class StreamCut(Exception):
    """Raised inside a streaming body: the server drops the connection mid-response."""


class FaultServer:
    """The ASGI app and its state: fault settings, the request log, per-step counters."""

    def __init__(self, faults: Faults, *, seed: int | None, log_path: Path | None) -> None:
        self.faults = faults
        self.rng = random.Random(seed)
        self.log_path = log_path
        self.records: list[Record] = []
        self.per_step: dict[str, int] = defaultdict(int)
        self.identify = Identify()
        self._lock = threading.Lock()
        self._next = 0
        self.open = 0  # completions being answered now (streams until their last byte)
        self.peak = 0  # the most at once since the start (or the last POST /_stats)

    # -- bookkeeping
    def _record(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)
            if self.log_path is not None:
                with self.log_path.open("a") as out:
                    out.write(json.dumps(asdict(record)) + "\n")

    def _fault(self, info: dict[str, Any], stream: bool) -> str | None:
        f = self.faults
        step, task = info["step"], info["task"]
        if stream and step and task in f.cut_first and self.per_step[step] <= f.cut_first[task]:
            return "cut"
        roll = self.rng.random()
        for name, rate in (
            ("429", f.rate_429),
            ("5xx", f.rate_5xx),
            ("timeout", f.timeout_rate),
            ("cut", f.cut_stream if stream else 0.0),
            ("invalid_json", f.invalid_json),
        ):
            if roll < rate:
                if name == "invalid_json" and (info["repair"] or task not in _JSON_TASKS):
                    return None
                return name
            roll -= rate
        return None

    # -- ASGI
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response

        request = Request(scope, receive)
        path = scope.get("path", "")
        response: Response
        is_chat = path in ("/v1/chat/completions", "/chat/completions")
        if is_chat and request.method == "POST":
            self.open += 1  # one event loop: no lock needed
            self.peak = max(self.peak, self.open)
            try:
                response = await self.chat(request)
                await response(scope, receive, send)
            except StreamCut:
                # returning without finishing the body makes uvicorn drop the connection:
                # the client sees an incomplete chunked body, as with a provider dying
                return
            finally:
                self.open -= 1
            return
        if path == "/_stats":
            if request.method == "POST":
                self.peak = self.open
            response = JSONResponse({"open": self.open, "peak": self.peak, "requests": self._next})
        elif path == "/_log":
            with self._lock:
                body = [asdict(r) for r in self.records]
            response = JSONResponse(body)
        elif path == "/_faults" and request.method == "POST":
            try:
                self.faults.update(await request.json())
            except (ValueError, TypeError) as exc:
                response = JSONResponse({"error": str(exc)}, status_code=422)
            else:
                response = JSONResponse(asdict(self.faults))
        elif path == "/_faults":
            response = JSONResponse(asdict(self.faults))
        elif path == "/healthz":
            response = JSONResponse({"status": "ok"})
        else:
            response = JSONResponse({"error": "not found"}, status_code=404)
        await response(scope, receive, send)

    async def chat(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        started = time.time()
        body = await request.json()
        messages = list(body.get("messages") or [])
        stream = bool(body.get("stream"))
        model = str(body.get("model", "fault"))
        task = self.identify.task(messages)
        info = self.identify.step(task, messages)
        with self._lock:
            self._next += 1
            rid = self._next
            if info["step"]:
                self.per_step[info["step"]] += 1
        prompt_sha = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
        fault = self._fault(info, stream)

        def record(outcome: str, chars: int = 0, t_first: float | None = None) -> None:
            self._record(
                Record(
                    id=rid,
                    t_start=started,
                    t_end=time.time(),
                    stream=stream,
                    outcome=outcome,
                    chars=chars,
                    prompt_sha=prompt_sha,
                    t_first=t_first,
                    **info,
                )
            )

        if fault == "429":
            record("429")
            retry = f"{self.faults.retry_after:g}"
            return _error(429, "rate limited (fault injected)", {"Retry-After": retry})
        if fault == "5xx":
            status = self.rng.choice((500, 502, 503))
            record("5xx")
            return _error(status, f"upstream failure {status} (fault injected)")
        hang_before = fault == "timeout" and (not stream or self.rng.random() < 0.5)
        if hang_before:
            record("timeout")  # now: the hang outlives the test's reading of the log
            await asyncio.sleep(self.faults.hang)
            return _error(504, "gave up (fault injected)")

        try:
            text = answer_text(task, messages)
        except Exception as exc:  # the offline model refusing: a plain 400
            record("bad_request")
            return _error(400, str(exc))
        if fault == "invalid_json":
            text = text[: max(1, len(text) // 2)]
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        usage = _usage(messages, text)

        if not stream:
            await asyncio.sleep(self.faults.ttft + self.faults.latency)
            record(fault or "ok", len(text))
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": int(started),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )

        parts = pieces(text)
        mode = self.faults.cut_mode
        if mode == "mixed":
            count = self.per_step[info["step"]] if info["step"] else self.rng.randint(1, 2)
            mode = "abort" if count % 2 else "clean"
        # mid-way: between a third and two thirds of the answer
        third = max(1, len(parts) // 3)
        cut_at = self.rng.randint(third, max(third, len(parts) - third)) if fault == "cut" else None
        stall_at = self.rng.randint(1, max(1, len(parts) - 1)) if fault == "timeout" else None
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        delay = self.faults.latency / max(1, len(parts))
        ttft = self.faults.ttft

        async def events() -> AsyncIterator[str]:
            sent = 0
            outcome = "disconnected"
            first: float | None = None
            try:
                await asyncio.sleep(ttft)
                for i, piece in enumerate(parts):
                    if i == cut_at:
                        outcome = "cut" if mode == "abort" else "cut_clean"
                        if mode == "clean":
                            return  # the body ends normally, but unfinished
                        raise StreamCut(f"stream {rid} cut after {i} pieces (fault injected)")
                    if i == stall_at:
                        outcome = "timeout"
                        await asyncio.sleep(self.faults.hang)
                        raise StreamCut(f"stream {rid} stalled (fault injected)")
                    delta: dict[str, Any] = {"content": piece}
                    if i == 0:
                        delta["role"] = "assistant"
                        first = time.time()
                    yield _sse(_chunk(model, cid, started, delta, None))
                    sent += len(piece)
                    await asyncio.sleep(delay)
                yield _sse(_chunk(model, cid, started, {}, "stop"))
                if include_usage:
                    yield _sse(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": int(started),
                            "model": model,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                yield "data: [DONE]\n\n"
                outcome = fault or "ok"
            finally:
                record(outcome, sent, first)

        return StreamingResponse(events(), media_type="text/event-stream")


_JSON_TASKS = frozenset(
    {"finalise_modules", "quiz", "coding_exercise", "grade_answer", "recommendation"}
)


def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    prompt = sum(len(_text(m.get("content")).split()) for m in messages)
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    body = {"error": {"message": message, "type": "server_error", "code": str(status)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _chunk(
    model: str, cid: str, created: float, delta: dict[str, Any], finish: str | None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(created),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


# --------------------------------------------------------------------------- running it


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records a server wrote to ``path`` (an unfinished last line is skipped)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    parser.add_argument("--log", type=Path, help="append one JSON line per request here")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to the first chunk")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds for the rest")
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-5xx", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--cut-stream", type=float, default=0.0)
    parser.add_argument("--invalid-json", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds, on 429s")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a timeout hangs")
    parser.add_argument("--cut-mode", choices=("abort", "clean", "mixed"), default="mixed")
    args = parser.parse_args(argv)
    rates = [args.rate_429, args.rate_5xx, args.timeout_rate, args.cut_stream, args.invalid_json]
    if any(r < 0 or r > 1 for r in rates) or sum(rates) > 1:
        parser.error("rates are probabilities: each in [0, 1], and together at most 1")
    return args


def main(argv: list[str] | None = None) -> None:
    import socket

    import uvicorn

    args = parse_args(argv)
    faults = Faults(
        ttft=args.ttft,
        latency=args.latency,
        rate_429=args.rate_429,
        rate_5xx=args.rate_5xx,
        timeout_rate=args.timeout_rate,
        cut_stream=args.cut_stream,
        invalid_json=args.invalid_json,
        retry_after=args.retry_after,
        hang=args.hang,
        cut_mode=args.cut_mode,
    )
    server = FaultServer(faults, seed=args.seed, log_path=args.log)
    answer_text("welcome_plan", [{"role": "user", "content": "topic: warm-up"}])  # import now
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    if args.port_file is not None:
        args.port_file.write_text(str(port))
    print(f"fault LLM server on http://{args.host}:{port}/v1", flush=True)
    config = uvicorn.Config(server, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
