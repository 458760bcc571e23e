from services.planner.app import app, runtime

runtime.serve(app)
