"""A loopback OpenAI-compatible server for tests: a deterministic fake model and scheduled faults.

``FakeOpenAIServer`` serves ``/v1/chat/completions`` and ``/v1/completions`` on 127.0.0.1 (a free
port) from a thread, with the stdlib's threading HTTP server. Its "model" is a few rules a test
can recompute with this module's functions:

- A multiple-choice prompt (nanochat's ``render_mc`` layout, ``- text=LETTER`` lines) is answered
  with ``mc_answer(prompt)``: the letter of the longest choice text (the first on ties).
  Log-probabilities: ``mc_logprobs(prompt)``, the answer likeliest, then the other letters.
- Any other chat prompt gets ``chat_reply(prompt, ...)``: the prompt echoed with the decoding
  settings, cut to ``max_tokens`` words.
- ``/v1/completions`` with ``echo`` scores the prompt with ``tokenize`` (a BOS token, then words
  with their leading whitespace) and ``token_logprob``.

With ``tools=True`` the fake model calls tools (``tool_turn``): a prompt holding ``calc: EXPR``
sent with ``tools`` is answered with a ``tool_calls`` message calling the calculator on EXPR,
and a conversation ending with ``tool`` messages with ``The result is #### <last tool content>``;
``reject_tools=True`` refuses ``tools`` as vLLM does without tool calling on. With
``reasoning=True`` it thinks first (``reasoning_reply``): the thought goes to
``reasoning_content`` and the answer to ``content``, with a ``usage`` block counting both.

Faults come from ``faults(request) -> kind | None``, called once per request; ``first_attempts``
builds the usual schedule (each distinct request body fails its first attempt(s), then
succeeds). Kinds: ``"500"``, ``"429"`` (with ``Retry-After``), ``"slow"`` (answers after
``slow_seconds``), ``"truncated"`` (Content-Length promises more than is sent), ``"cut_json"``
(a complete response whose JSON stops mid-way), ``"reset"`` (the connection is reset with no
answer) and ``"400"``. The server counts requests, faults, in-flight maxima and headers.

Capacity, as a real server has: with ``capacity=N`` the model works on at most N requests at a
time, ``service_seconds`` each; the others wait their turn (``when_full="queue"``, as
``transformers serve`` does, which also finishes the work of a client that stopped waiting),
or are refused at once with HTTP 429 or 503 (``when_full="429"``/``"503"``, as a server with a
bounded queue or a rate-limited API does). ``capacity`` may be changed while it serves.
``prompt_lists=False`` makes ``/v1/completions`` refuse a list of prompts, as ``transformers
serve`` does. ``port`` binds a given port (to restart a server where clients expect it).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chattasks.eval.backends.openai_probe import PROBE_QUESTION, PROBE_TEXTS

CHOICE_LINE = re.compile(r"^- (.*)=(\S+)$", re.MULTILINE)
TOKEN = re.compile(r"\s*\S+|\s+$")
BOS = "<s>"
FAULT_KINDS = ("500", "429", "slow", "truncated", "cut_json", "reset")


def mc_choices(prompt: str) -> list[tuple[str, str]]:
    """The (choice text, letter) pairs of a render_mc prompt; empty for any other prompt."""
    return [(m.group(1), m.group(2)) for m in CHOICE_LINE.finditer(prompt)]


def mc_answer(prompt: str) -> str:
    """The fake model's answer to a multiple-choice prompt: the letter of the longest choice text."""
    choices = mc_choices(prompt)
    longest = max(len(text) for text, _ in choices)
    return next(letter for text, letter in choices if len(text) == longest)


def mc_logprobs(prompt: str) -> list[tuple[str, float]]:
    """The fake model's first-token candidates for a multiple-choice prompt, likeliest first."""
    answer = mc_answer(prompt)
    others = [letter for _, letter in mc_choices(prompt) if letter != answer]
    ranked = [(answer, -0.25)] + [(letter, -1.5 - 0.5 * i) for i, letter in enumerate(others)]
    return ranked + [(" " + answer, -4.0), ("The", -4.5), ("\n", -5.0)]


def chat_reply(
    prompt: str, *, max_tokens: int, temperature: float, top_k: Any, seed: Any, sample: int
) -> str:
    """The fake model's reply to a non-multiple-choice chat prompt, cut to ``max_tokens`` words."""
    text = f"You said: {prompt}"
    if temperature > 0:
        text += f" [T={temperature} k={top_k} seed={seed} #{sample}]"
    return " ".join(text.split(" ")[:max_tokens])


def tokenize(text: str) -> list[str]:
    """The fake tokenizer: a BOS token, then each word with the whitespace before it."""
    return [BOS, *TOKEN.findall(text)]


def token_logprob(previous: str, token: str) -> float:
    """The fake model's log-probability of ``token`` after the text ``previous``."""
    return -0.1 * (1 + len(token.strip())) - 0.01 * (len(previous) % 7)


def prompt_logprobs(text: str) -> tuple[list[str], list[float | None], list[int]]:
    """Tokens, their log-probabilities (None for BOS) and their offsets, as an echoing server gives them."""
    tokens = tokenize(text)
    logprobs: list[float | None] = [None]
    offsets = [0]
    seen = ""
    for token in tokens[1:]:
        offsets.append(len(BOS) + len(seen))
        logprobs.append(token_logprob(seen, token))
        seen += token
    return tokens, logprobs, offsets


def continuation_logprob(context: str, continuation: str) -> tuple[float, int]:
    """What a correct client computes for ``continuation`` after ``context``: lm-eval's token-count rule."""
    context_tokens = len(tokenize(context.rstrip()))
    _, logprobs, _ = prompt_logprobs(context + continuation)
    own = [lp for lp in logprobs[context_tokens:] if lp is not None]
    return sum(own), len(own)


@dataclass
class Request:
    """One request as the fault schedule sees it."""

    path: str
    body: dict[str, Any]
    seen: int  # how many identical requests (same path and body) this server has answered before
    number: int  # this server's request counter, from 0


def first_attempts(kinds: Sequence[str] = FAULT_KINDS, times: int = 1) -> Callable[[Request], str | None]:
    """A schedule: each distinct request's first ``times`` attempts fail, the kind picked by its body's hash."""

    def schedule(request: Request) -> str | None:
        if request.seen >= times:
            return None
        key = zlib.crc32(json.dumps([request.path, request.body], sort_keys=True).encode())
        return kinds[(key + request.seen) % len(kinds)]

    return schedule


class FakeOpenAIServer:
    """A thread serving the fake model on 127.0.0.1; use as a context manager. See the module docstring."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        logprobs: bool = True,
        reject_logprobs: bool = False,
        honour_n: bool = True,
        reject_n: bool = False,
        reject_top_k: bool = False,
        echo: bool = True,
        zero_max_tokens: bool = True,
        faults: Callable[[Request], str | None] | None = None,
        delay: float = 0.0,
        slow_seconds: float = 1.0,
        retry_after: str = "0",
        tools: bool = False,
        reject_tools: bool = False,
        reasoning: bool = False,
        capacity: int | None = None,
        service_seconds: float = 0.0,
        when_full: str = "queue",
        prompt_lists: bool = True,
        port: int = 0,
    ) -> None:
        self.model = model
        self.tools, self.reject_tools, self.reasoning = tools, reject_tools, reasoning
        self.logprobs, self.reject_logprobs = logprobs, reject_logprobs
        self.honour_n, self.reject_n, self.reject_top_k = honour_n, reject_n, reject_top_k
        self.echo, self.zero_max_tokens = echo, zero_max_tokens
        self.faults = faults
        self.delay, self.slow_seconds, self.retry_after = delay, slow_seconds, retry_after
        self.capacity, self.service_seconds, self.when_full = capacity, service_seconds, when_full
        self.prompt_lists = prompt_lists
        self.working = 0  # requests the model is working on (capacity mode)
        self.refused_full = 0  # requests refused with 429/503 because the model was full
        self.turn = threading.Condition()
        self.connections: set[socket.socket] = set()  # open client connections, cut on exit
        self.lock = threading.Lock()
        self.bodies: list[tuple[str, dict[str, Any]]] = []  # every request, in arrival order
        self.authorization: list[str | None] = []
        self.fault_counts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._seen: Counter[str] = Counter()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop as a killed server does: no new connections, and the open ones (keep-alive too) cut."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """The bodies of the requests made to ``path`` (e.g. ``/v1/chat/completions``)."""
        return [body for p, body in self.bodies if p == path]

    def admit(self, path: str, body: dict[str, Any], authorization: str | None) -> str | None:
        """Record a request and return the fault to inject into it, if any."""
        with self.lock:
            key = json.dumps([path, body], sort_keys=True)
            request = Request(path, body, self._seen[key], len(self.bodies))
            self._seen[key] += 1
            self.bodies.append((path, body))
            self.authorization.append(authorization)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        fault = self.faults(request) if self.faults else None
        if fault:
            with self.lock:
                self.fault_counts[fault] += 1
        return fault

    def serve_turn(self) -> int | None:
        """Wait for the model's turn (capacity mode) and spend its service time; a refusal status if full."""
        if self.capacity is None:
            return None
        with self.turn:
            if self.when_full != "queue" and self.working >= self.capacity:
                self.refused_full += 1
                return int(self.when_full)
            while self.capacity is not None and self.working >= self.capacity:
                self.turn.wait()
            self.working += 1
        try:
            time.sleep(self.service_seconds)
        finally:
            with self.turn:
                self.working -= 1
                self.turn.notify_all()
        return None

    def leave(self) -> None:
        """A request finished."""
        with self.lock:
            self.in_flight -= 1

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The fake model's (status, JSON body) for a request that gets no fault."""
        if body.get("model") != self.model:
            return 404, _error(f"The model `{body.get('model')}` does not exist.")
        if path == "/v1/chat/completions":
            return self._chat(body)
        if path == "/v1/completions":
            return self._completions(body)
        return 404, _error(f"no route {path}")

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        extra = tool_or_reasoning_answer(self, body)
        if extra is not None:
            return extra
        if self.reject_logprobs and "logprobs" in body:
            return 400, _error("logprobs is not supported by this server")
        if self.reject_top_k and "top_k" in body:
            return 400, _error("Unrecognized request argument supplied: top_k")
        n = int(body.get("n", 1))
        if self.reject_n and n > 1:
            return 400, _error("Only one completion choice is allowed")
        prompt = body["messages"][-1]["content"]
        max_tokens = int(body.get("max_tokens", 16))
        choices = []
        for i in range(n if self.honour_n else 1):
            if mc_choices(prompt):
                content = mc_answer(prompt)
            else:
                content = chat_reply(
                    prompt,
                    max_tokens=max_tokens,
                    temperature=float(body.get("temperature", 1.0)),
                    top_k=body.get("top_k"),
                    seed=body.get("seed"),
                    sample=i,
                )
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "length",
            }
            if body.get("logprobs") and self.logprobs:
                choice["logprobs"] = {
                    "content": [_chat_logprobs(prompt, content, int(body.get("top_logprobs", 0)))]
                }
            else:
                choice["logprobs"] = None
            choices.append(choice)
        choices.reverse()  # the API does not promise order: clients must sort by index
        return 200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": self.model,
            "choices": choices,
        }

    def _completions(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        max_tokens = int(body.get("max_tokens", 16))
        if max_tokens < 1 and not self.zero_max_tokens:
            return 400, _error(f"max_tokens must be at least 1, got {max_tokens}.")
        if isinstance(body["prompt"], list) and not self.prompt_lists:
            return 400, _error("prompt must be a string.")
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = []
        for i, prompt in enumerate(prompts):
            tokens, logprobs, offsets = (
                prompt_logprobs(prompt) if self.echo and body.get("echo") else ([], [], [])
            )
            text = prompt if self.echo and body.get("echo") else ""
            if max_tokens > 0:  # generate one token: " ok"
                offsets.append(len(BOS) + len(text) if text else 0)
                tokens.append(" ok")
                logprobs.append(-0.7)
                text += " ok"
            choices.append(
                {
                    "index": i,
                    "text": text,
                    "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets}
                    if body.get("logprobs") is not None
                    else None,
                    "finish_reason": "length",
                }
            )
        choices.reverse()
        return 200, {"id": "cmpl-fake", "object": "text_completion", "model": self.model, "choices": choices}


CALC = re.compile(r"calc: (.+?)(?:\n|$)")


def reasoning_reply(prompt: str, max_tokens: int) -> tuple[str, str, str]:
    """(reasoning, content, finish reason) of the thinking fake model: it thinks about the prompt
    in words, then answers; cut to ``max_tokens`` words in all, reasoning first."""
    thought = f"The user asked: {prompt} Let me think it over carefully before I answer."
    answer = "My answer is #### 42"
    words = thought.split(" ") + answer.split(" ")
    if len(words) <= max_tokens:
        return thought, answer, "stop"
    kept = thought.split(" ")[:max_tokens]
    cut = max_tokens - len(thought.split(" "))
    return " ".join(kept), " ".join(answer.split(" ")[:cut]) if cut > 0 else "", "length"


def tool_turn(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The tool-calling fake model's message for ``messages``, or None when it has nothing to do
    with tools (no ``calc:`` in the prompt and no tool answer to read)."""
    if messages[-1].get("role") == "tool":
        return {"role": "assistant", "content": f"The result is #### {messages[-1]['content']}"}
    match = CALC.search(str(messages[-1].get("content", "")))
    if match is None:
        return None
    call = {
        "id": f"call_{len(messages)}",
        "type": "function",
        "function": {"name": "calculator", "arguments": json.dumps({"expression": match.group(1)})},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def tool_or_reasoning_answer(
    fake: FakeOpenAIServer, body: dict[str, Any]
) -> tuple[int, dict[str, Any]] | None:
    """The answer of the tool-calling or thinking fake model, or None to answer as the plain one."""
    if "tools" in body and fake.reject_tools:
        return 400, _error(
            '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
        )
    usage = None
    if fake.tools and "tools" in body and (message := tool_turn(body["messages"])) is not None:
        finish = "tool_calls" if message.get("tool_calls") else "stop"
    elif fake.reasoning:
        prompt = str(body["messages"][-1]["content"])
        thought, answer, finish = reasoning_reply(prompt, int(body.get("max_tokens", 16)))
        message = {"role": "assistant", "content": answer or None, "reasoning_content": thought}
        thought_words, answer_words = len(thought.split(" ")), len(answer.split(" ")) if answer else 0
        usage = {
            "prompt_tokens": len(prompt.split(" ")),
            "completion_tokens": thought_words + answer_words,
            "completion_tokens_details": {"reasoning_tokens": thought_words},
        }
    else:
        return None
    reply: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": fake.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        reply["usage"] = usage
    return 200, reply


def _chat_logprobs(prompt: str, content: str, top: int) -> dict[str, Any]:
    if mc_choices(prompt):
        ranked = mc_logprobs(prompt)
    else:
        ranked = [(content.split(" ")[0], -0.1)]
    chosen = ranked[0]
    return {
        "token": chosen[0],
        "logprob": chosen[1],
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked[:top]],
    }


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    fake: FakeOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake.lock:
            self.fake.connections.add(self.connection)

    def finish(self) -> None:
        with self.fake.lock:
            self.fake.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        fault = self.fake.admit(self.path, body, self.headers.get("Authorization"))
        self.left = False
        try:
            self._respond(fault, body)
        except OSError:  # the client gave up on a slow answer
            self.close_connection = True
        finally:
            self._leave()

    def _leave(self) -> None:
        # Before the answer goes out: a client may send its next request as soon as it has one.
        if not self.left:
            self.left = True
            self.fake.leave()

    def _respond(self, fault: str | None, body: dict[str, Any]) -> None:
        if self.fake.delay:
            time.sleep(self.fake.delay)
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if fault == "slow":
            time.sleep(self.fake.slow_seconds)
        refused = self.fake.serve_turn()
        if refused:
            status, payload = refused, _error("the server is at capacity, try again later")
        elif fault in ("500", "429", "400"):
            status, payload = int(fault), _error(f"injected fault {fault}")
        else:
            status, payload = self.fake.answer(self.path, body)
        data = json.dumps(payload).encode()
        if fault == "cut_json":
            data = data[: len(data) // 2]
        self._leave()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if fault == "429":
            self.send_header("Retry-After", self.fake.retry_after)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "truncated":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


def is_probe(body: dict[str, Any]) -> bool:
    """Whether a request is one of the backend's capability probes (asked once, not a question)."""
    asks = [m.get("content") for m in body.get("messages", [])]
    return PROBE_QUESTION in asks or body.get("prompt") in (list(PROBE_TEXTS), PROBE_TEXTS[0])


def asked(fake: FakeOpenAIServer, path: str) -> list[dict[str, Any]]:
    """The bodies of the questions sent to ``path``, probes left out."""
    return [body for body in fake.requests_to(path) if not is_probe(body)]
