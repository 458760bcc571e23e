import gc

gc.disable()  # nothing to collect while importing; Runtime re-enables it once started

from services.assessment.app import app, runtime  # noqa: E402

runtime.serve(app)
