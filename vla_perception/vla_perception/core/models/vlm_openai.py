"""A vision-language model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

vLLM, llama.cpp's server, Ollama and hosted services speak this protocol. The image goes in the
user message as a JPEG data URL (downscaled so its longer side is at most ``max_image_side``).

Transport rules (standard library only: ``http.client`` + ``ssl``):
- ``https://`` with certificate and host-name checks, against the system trust store or the PEM
  file ``ca_bundle``. Plain ``http://`` only to a loopback host (127.0.0.0/8, ::1, localhost),
  for a local server on the same machine; any other ``http://`` URL is refused at load time.
- Requests go to the configured host only: redirects are not followed (a 3xx is an error).
- ``timeout`` bounds one whole attempt (connect, send, every byte of the answer), so a server that
  trickles its answer cannot hold the node; up to ``max_retries`` more attempts follow a timeout, a
  connection failure, 429 or 5xx, waiting ``backoff`` * 2^n seconds, or what ``Retry-After`` asks
  when that is at most ``max_retry_wait`` (a longer wait fails at once and says so).
- The API key is read from the environment variable named by ``api_key_env`` when the model is
  loaded. It is sent only in the ``Authorization`` header and is masked out of every error message.
"""
from __future__ import annotations

import base64
import email.utils
import http.client
import io
import ipaddress
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import numpy as np

from vla_perception.core.models.checks import check_image, check_max_new_tokens, check_text
from vla_perception.core.models.json_answers import ModelOutputError, checked_json_answer
from vla_perception.core.models.results import TextResult
from vla_perception.core.models.vlm_prompts import ChatPrompts
from vla_perception.core.types import VlaInputError

RETRIED_STATUSES = {429, 500, 502, 503, 504}
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MASK = "***"


class EndpointError(VlaInputError):
    """The endpoint refused or failed the request; the message says why and what to check."""


@dataclass(frozen=True)
class EndpointSettings:
    base_url: str  # e.g. https://api.example.com/v1 or http://127.0.0.1:11434/v1 ("/chat/completions" is added)
    model: str  # the server's model name
    api_key_env: str = ""  # environment variable holding the API key; empty: no Authorization header
    timeout: float = 60.0  # seconds for one whole attempt
    max_retries: int = 2
    backoff: float = 1.0  # first retry delay, doubled each time
    max_retry_wait: float = 30.0  # longest Retry-After honoured
    max_image_side: int = 1024
    ca_bundle: str = ""  # PEM file of trusted CAs; empty: the system's
    jpeg_quality: int = 90


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_settings(settings: EndpointSettings) -> None:
    """Refuse what the transport rules forbid, before any request is made."""
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise VlaInputError(f"base_url {settings.base_url!r} must be an https:// URL "
                            "(or http:// to a loopback host), e.g. https://api.example.com/v1")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise VlaInputError(f"base_url {settings.base_url!r}: plain http is allowed to a loopback host only "
                            "(127.0.0.1, ::1, localhost); use https for any other host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise VlaInputError("base_url must not carry a query, fragment or credentials (the key comes from "
                            "api_key_env)")
    if not settings.model.strip():
        raise VlaInputError("model: name the server's model (e.g. llava, gpt-4o-mini, Qwen/Qwen2-VL-2B-Instruct)")
    if settings.ca_bundle and not os.path.isfile(settings.ca_bundle):
        raise VlaInputError(f"ca_bundle {settings.ca_bundle!r} is not a file")


def read_api_key(variable: str) -> str:
    if not variable:
        return ""
    key = os.environ.get(variable, "")
    if not key.strip():
        raise VlaInputError(f"the environment variable {variable} (parameter api_key_env) is not set or empty: "
                            "export the API key there before starting the node")
    return key.strip()


def image_data_url(image: np.ndarray, max_side: int, quality: int = 90) -> str:
    """JPEG data URL of ``image``, downscaled (aspect kept) so that its longer side is at most ``max_side``."""
    from PIL import Image

    picture = Image.fromarray(image)
    scale = max_side / max(picture.size)
    if scale < 1.0:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Retry(Exception):
    def __init__(self, reason: str, wait: Optional[float] = None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class ChatEndpoint:
    """POSTs chat-completion requests under the transport rules of this module."""

    def __init__(self, settings: EndpointSettings, api_key: str = "", sleep=time.sleep):
        check_settings(settings)
        self.settings = settings
        self._key = api_key
        self._sleep = sleep
        parts = urlsplit(settings.base_url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = parts.path.rstrip("/") + "/chat/completions"
        self._ssl = ssl.create_default_context(cafile=settings.ca_bundle or None) if self._https else None

    def mask(self, text: str) -> str:
        return text.replace(self._key, MASK) if self._key else text

    def complete(self, body: dict) -> dict:
        """The decoded JSON answer of a successful request; EndpointError otherwise."""
        payload = json.dumps(body).encode()
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(payload)
            except _Retry as retry:
                if attempt == attempts - 1:
                    raise EndpointError(self.mask(f"{self._where()}: {retry.reason} "
                                                  f"(gave up after {attempts} attempt(s))")) from None
                wait = retry.wait if retry.wait is not None else self.settings.backoff * 2 ** attempt
                if wait > self.settings.max_retry_wait:
                    raise EndpointError(self.mask(f"{self._where()}: {retry.reason}; the server asks to retry "
                                                  f"after {wait:.0f} s, more than max_retry_wait "
                                                  f"{self.settings.max_retry_wait:.0f} s")) from None
                self._sleep(wait)
        raise AssertionError("unreachable")

    def _where(self) -> str:
        scheme = "https" if self._https else "http"
        port = f":{self._port}" if self._port else ""
        return f"{scheme}://{self._host}{port}{self._path}"

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self, length: int) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Content-Length": str(length), "User-Agent": "vla_perception-vlm_node"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _attempt(self, payload: bytes) -> dict:
        deadline = time.monotonic() + self.settings.timeout
        connection = self._connection(self.settings.timeout)
        try:
            connection.request("POST", self._path, body=payload, headers=self._headers(len(payload)))
            response = connection.getresponse()
            body = self._read_all(connection, response, deadline)
        except ssl.SSLCertVerificationError as error:
            raise EndpointError(f"{self._where()}: TLS certificate check failed ({error.verify_message}); "
                                "give the server's CA as ca_bundle if it is a private one") from None
        except (socket.timeout, TimeoutError):
            raise _Retry(f"no complete answer within timeout {self.settings.timeout:.1f} s") from None
        except (ConnectionError, OSError, http.client.HTTPException) as error:
            raise _Retry(f"connection failed: {type(error).__name__}: {error}") from None
        finally:
            connection.close()
        return self._decode(response, body)

    def _read_all(self, connection, response, deadline: float) -> bytes:
        """Read the body chunk by chunk, each read bounded by what is left of the attempt's time."""
        chunks, size = [], 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            if connection.sock is not None:
                connection.sock.settimeout(left)
            chunk = response.read1(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise EndpointError(f"{self._where()}: answer larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)

    def _decode(self, response, body: bytes) -> dict:
        status = response.status
        excerpt = self.mask(body[:300].decode("utf-8", "replace"))
        if status in RETRIED_STATUSES:
            raise _Retry(f"HTTP {status} {response.reason}: {excerpt}", retry_after_seconds(response.getheader(
                "Retry-After")))
        if status in (401, 403):
            source = f"the environment variable {self.settings.api_key_env}" if self.settings.api_key_env else \
                "api_key_env (no key was sent)"
            raise EndpointError(f"{self._where()}: HTTP {status} {response.reason}: the server refused the API key; "
                                f"check {source}. Server said: {excerpt}")
        if not 200 <= status < 300:
            raise EndpointError(f"{self._where()}: HTTP {status} {response.reason}: {excerpt}")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise EndpointError(f"{self._where()}: the answer is not JSON ({error}): {excerpt}") from None


def completion_text(answer: dict) -> str:
    """``choices[0].message.content`` of a chat completion, or EndpointError naming what is missing."""
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise EndpointError(f"the answer has no choices[0].message.content: {json.dumps(answer)[:300]}") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise EndpointError(f"choices[0].message.content is not text: {json.dumps(content)[:200]}")
    return content.strip()


class OpenAIChatModel:
    """caption / answer / ask through an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, settings: EndpointSettings, sleep=time.sleep):
        self.endpoint = ChatEndpoint(settings, read_api_key(settings.api_key_env), sleep)
        self.settings = settings
        self.model_id = f"{settings.model} @ {self.endpoint._where()}"
        self.prompts = ChatPrompts()

    def close(self) -> None:
        pass

    def _request(self, image: np.ndarray, prompt: str, max_new_tokens: int, schema: Optional[dict]) -> dict:
        content = [{"type": "text", "text": prompt},
                   {"type": "image_url", "image_url": {"url": image_data_url(
                       image, self.settings.max_image_side, self.settings.jpeg_quality)}}]
        body = {"model": self.settings.model, "messages": [{"role": "user", "content": content}],
                "max_tokens": int(max_new_tokens), "temperature": 0}
        if schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": schema, "strict": True}}
        return body

    def _run(self, image, prompt: str, max_new_tokens: int, schema: Optional[dict] = None) -> TextResult:
        image, tokens = check_image(image), check_max_new_tokens(max_new_tokens)
        started = time.perf_counter()
        text = completion_text(self.endpoint.complete(self._request(image, prompt, tokens, schema)))
        if schema is not None:
            try:
                text = checked_json_answer(text, schema)
            except ModelOutputError as error:
                raise ModelOutputError(self.endpoint.mask(str(error))) from None
        return TextResult(text, time.perf_counter() - started)

    def caption(self, image, prefix: str = "", max_new_tokens: int = 20) -> TextResult:
        return self._run(image, self.prompts.caption(prefix), max_new_tokens)

    def answer(self, image, question: str, max_new_tokens: int = 10) -> TextResult:
        return self._run(image, self.prompts.answer(check_text(question, "question")), max_new_tokens)

    def ask(self, image, prompt: str, max_new_tokens: int = 64, schema: Optional[dict] = None) -> TextResult:
        return self._run(image, check_text(prompt, "prompt"), max_new_tokens, schema)
