"""Calling other nodes' services from inside a callback, with a timeout and a clear error."""
from __future__ import annotations

import threading


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
    if not done.wait(timeout):
        future.cancel()
        raise ServiceCallError(f"no answer from {name} within {timeout:.0f} s")
    response = future.result()
    if response is None:
        raise ServiceCallError(f"{name} returned no response")
    if hasattr(response, "success") and not response.success:
        raise ServiceCallError(f"{name}: {response.message}")
    return response
