import gc

gc.disable()  # nothing to collect while importing; Runtime re-enables it once started

import contextlib  # noqa: E402
import resource  # noqa: E402

from services.gateway.app import app, runtime  # noqa: E402

# every open SSE stream is a socket: a soft limit of 1,024 open files (a common
# default) would cap one process at about a thousand streams
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != hard:
    with contextlib.suppress(ValueError, OSError):  # an unlimited hard limit may be refused
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

runtime.serve(app)
