import contextlib
import resource

from services.gateway.app import app, runtime

# every open SSE stream is a socket: a soft limit of 1,024 open files (a common
# default) would cap one process at about a thousand streams
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != hard:
    with contextlib.suppress(ValueError, OSError):  # an unlimited hard limit may be refused
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

runtime.serve(app)
