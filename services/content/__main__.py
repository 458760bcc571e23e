from services.content.app import app, runtime

runtime.serve(app)
