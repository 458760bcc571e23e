"""``lectern``: plan, generate, export and inspect Lectern courses from a terminal.

Talks to the gateway (REST + SSE, :mod:`shared.client.http`) or straight to the broker
(:mod:`shared.client.broker`). ``lectern --help`` lists the commands; README.md ("CLI")
documents them and the exit codes.
"""
