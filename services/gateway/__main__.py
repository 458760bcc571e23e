import uvicorn

from services.gateway.app import app, runtime

uvicorn.run(
    app,
    host=runtime.settings.http_host,
    port=runtime.settings.http_port or 8000,
    log_config=None,
)
