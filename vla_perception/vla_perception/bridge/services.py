"""Calling other nodes' services from inside a callback, with a timeout and a clear error."""
from __future__ import annotations

import threading
import time

PRESENCE_POLL = 0.25  # s between checks that the called service still exists


class ServiceCallError(RuntimeError):
    """The service is missing, timed out, or answered success=false (the message says which)."""


def call_service(client, request, timeout: float, discovery_timeout: float = 5.0):
    """Call ``client`` and wait (without spinning: the node's executor must run other threads).

    Raises ServiceCallError when the service is absent, does not answer within ``timeout``
    seconds, or answers ``success=false``.
    """
    name = client.srv_name
    if not client.wait_for_service(timeout_sec=min(discovery_timeout, timeout)):
        raise ServiceCallError(f"service {name} is not available (is its node running and active?)")
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    deadline = time.monotonic() + timeout
    # poll the server's presence too: a node that dies mid-call fails the call when its
    # endpoints vanish from the graph, not only at the end of the timeout
    while not done.wait(min(PRESENCE_POLL, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            future.cancel()
            raise ServiceCallError(f"no answer from {name} within {timeout:.3g} s")
        if not client.service_is_ready():
            future.cancel()
            raise ServiceCallError(f"service {name} went away mid-call (its node stopped?)")
    response = future.result()
    if response is None:
        raise ServiceCallError(f"{name} returned no response")
    if hasattr(response, "success") and not response.success:
        raise ServiceCallError(f"{name}: {response.message}")
    return response
