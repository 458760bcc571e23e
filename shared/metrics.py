"""Lectern's own Prometheus metrics besides the LLM's (``shared/llm/metrics.py``).

Every name, its labels and what it means are listed in docs/OPERATIONS.md; a test
checks that list against what the services serve. Labels are bounded: kinds,
routes, queues and outcomes, never user, tenant, job or course ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# no ``*_created`` series: they double the series count and no dashboard reads them
disable_created_metrics()

# -- messages -----------------------------------------------------------------------
MESSAGE_RETRIES = Counter(
    "lectern_message_retries_total",
    "Deliveries that failed and were scheduled again after a back-off.",
    ["service", "queue"],
)
DEAD_LETTERS = Counter(
    "lectern_dead_letters_total",
    "Messages moved to a dead-letter queue; cause is permanent (can never succeed) "
    "or exhausted (every attempt failed).",
    ["service", "queue", "cause"],
)

# -- jobs (counted by the gateway, which records every job and its final event) -----
JOBS = Counter(
    "lectern_jobs_total",
    "Jobs by kind and outcome: started, completed or failed.",
    ["kind", "outcome"],
)
JOB_DURATION = Histogram(
    "lectern_job_duration_seconds",
    "From a job's start to its final event.",
    ["kind", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
COURSE_DURATION = Histogram(
    "lectern_course_duration_seconds",
    "From a course's creation to course.ready (every lesson written and assessed).",
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
LESSONS_IN_FLIGHT = Gauge(
    "lectern_lessons_in_flight",
    "Lessons being written or revised by this process right now.",
)

# -- gateway ------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "lectern_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "lectern_http_request_duration_seconds",
    "Time to the response's headers (an SSE stream counts until it opens).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SSE_OPEN_STREAMS = Gauge(
    "lectern_sse_open_streams",
    "Server-sent event streams this gateway process holds open.",
)

# -- budgets -------------------------------------------------------------------------
BUDGET_REJECTIONS = Counter(
    "lectern_budget_rejections_total",
    "Requests refused because the caller's token budget is spent, by budget kind.",
    ["budget"],
)
BUDGET_ACCOUNTS = Gauge(
    "lectern_budget_accounts",
    "Accounts with usage this period, by how much of their budget is used: "
    "below_80, 80_to_100 (nearly spent) or spent.",
    ["band"],
)
TOKENS_CHARGED = Counter(
    "lectern_budget_tokens_charged_total",
    "LLM tokens charged to accounts' budgets, by budget kind.",
    ["budget"],
)

# -- abuse limits (gateway) ----------------------------------------------------------
RATE_LIMITED = Counter(
    "lectern_rate_limited_total",
    "Requests refused with 429 by a rate limit, by limit (e.g. generate_user, guest_ip).",
    ["limit"],
)
