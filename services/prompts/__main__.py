from services.prompts.app import app, runtime

runtime.serve(app)
