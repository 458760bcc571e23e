from services.assessment.app import app, runtime

runtime.serve(app)
