"""A loopback OpenAI-compatible chat-completions server for tests (127.0.0.1 only).

It checks every request's schema the way a strict server would (model, messages, the image part,
max_tokens, optional response_format) and answers from a script of replies: recorded completions,
HTTP errors, a slow start, a trickled body, or bytes that are not JSON. ``https=True`` serves TLS
with a self-signed certificate made at test time by the ``openssl`` command line tool.
"""
from __future__ import annotations

import base64
import io
import json
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

import pytest

# The shape of a real /v1/chat/completions answer (fields as servers return them).
RECORDED_COMPLETION = {
    "id": "chatcmpl-9f2c", "object": "chat.completion", "created": 1733100000, "model": "recorded-vlm",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "a red mug and a yellow duck on a table"}}],
    "usage": {"prompt_tokens": 112, "completion_tokens": 11, "total_tokens": 123},
}


def completion(content: str) -> dict:
    answer = json.loads(json.dumps(RECORDED_COMPLETION))
    answer["choices"][0]["message"]["content"] = content
    return answer


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict -> JSON; bytes/str sent as is; None -> RECORDED_COMPLETION
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between single body bytes

    def payload(self) -> bytes:
        body = RECORDED_COMPLETION if self.body is None else self.body
        if isinstance(body, dict):
            return json.dumps(body).encode()
        return body.encode() if isinstance(body, str) else body


def request_problems(body: dict) -> list[str]:
    """What is wrong with a chat-completions request carrying one image (empty when it is well formed)."""
    problems = []
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model missing")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens missing or not a positive integer")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or messages[-1].get("role") != "user":
        return problems + ["messages must end with a user message"]
    parts = messages[-1].get("content")
    if not isinstance(parts, list):
        return problems + ["user content must be a list of parts"]
    texts = [p for p in parts if p.get("type") == "text" and isinstance(p.get("text"), str) and p["text"]]
    images = [p for p in parts if p.get("type") == "image_url"]
    if len(texts) != 1:
        problems.append("exactly one text part expected")
    if len(images) != 1 or not str(images[0].get("image_url", {}).get("url", "")).startswith(
            "data:image/jpeg;base64,"):
        problems.append("exactly one image_url part with a JPEG data URL expected")
    if "response_format" in body:
        format_ = body["response_format"]
        if format_.get("type") != "json_schema" or not isinstance(format_.get("json_schema", {}).get("schema"),
                                                                  dict):
            problems.append("response_format must be {type: json_schema, json_schema: {name, schema}}")
    return problems


def prompt_text(body: dict) -> str:
    return [p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text"][0]


def image_size(body: dict) -> tuple[int, int]:
    from PIL import Image

    url = [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"][0]["image_url"]["url"]
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """(cert.pem, key.pem) for a test module; skips where openssl is missing."""
    try:
        return make_certificate(tmp_path_factory.mktemp("tls"))
    except FileNotFoundError:
        pytest.skip("the openssl command line tool is needed to make a test certificate (apt install openssl)")


class FakeChatServer:
    """``with FakeChatServer(replies) as server:`` then ``server.base_url``; ``server.requests`` as seen."""

    def __init__(self, replies: Optional[list[Reply]] = None, certificate: Optional[tuple[Path, Path]] = None,
                 respond: Optional[Callable[[dict], Reply]] = None):
        """``replies`` are used in order; after them, ``respond(request_body)`` (or the recorded completion)."""
        self.replies = list(replies or [])
        self.respond = respond
        self.requests: list[dict] = []  # {"path", "headers", "body", "problems"}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                    problems = request_problems(body)
                except json.JSONDecodeError:
                    body, problems = None, ["request body is not JSON"]
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                       "problems": problems})
                if outer.replies:
                    reply = outer.replies.pop(0)
                else:
                    reply = outer.respond(body) if outer.respond and body else Reply()
                if problems and reply.status == 200:
                    reply = Reply(400, {"error": {"message": "; ".join(problems)}})
                self._send(reply)

            def _send(self, reply: Reply):
                time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if reply.trickle:
                        for index in range(len(payload)):
                            self.wfile.write(payload[index:index + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client gave up, as it should on a timeout

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
