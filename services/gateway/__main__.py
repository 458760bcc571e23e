from services.gateway.app import app, runtime

runtime.serve(app)
