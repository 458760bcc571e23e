"""Python clients for systems that drive Lectern.

- :mod:`shared.client.http`: the gateway's REST + SSE API (httpx).
- :mod:`shared.client.broker`: the broker contract directly (aio-pika): commands with
  publisher confirms, and a job's events from a durable queue of the client's own.

Both raise the exceptions of :mod:`shared.client.errors` and yield
:class:`shared.client.events.Event`. Neither imports the LLM stack (litellm), so they
load fast; this package imports neither module by itself, so using one does not load
the other's dependencies.
"""
