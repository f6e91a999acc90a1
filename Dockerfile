# One image for every Hookyard service; the command picks the service.
#   make image                       (docker or podman build -t hookyard:dev .)
#   make image IMAGE=registry.example.com/hookyard:0.1.0
#
# The base is pinned by digest, so a rebuild gets the same Python and Debian:
# python:3.11.14-slim-bookworm, the multi-architecture index digest as published
# on Docker Hub. Move it on purpose: `docker buildx imagetools inspect
# python:3.11-slim-bookworm` prints the current one.
# tests/deploy/test_image.py checks the pin, the layer order and the user.
ARG BASE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${BASE} AS build
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
# The dependencies first, from the lock alone: a change to the code reuses this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
# Then the project itself, as a wheel into the same environment.
COPY README.md ./
COPY libs libs
COPY services services
COPY cli cli
RUN uv sync --locked --no-dev --no-editable

FROM ${BASE}
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin hookyard
COPY --from=build /app/.venv /app/.venv
COPY --from=build /app/services/ingest/gunicorn.conf.py /app/gunicorn.conf.py
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOOKYARD_HTTP_HOST=0.0.0.0
# The same numeric user as the Kubernetes pods' runAsUser (deploy/k8s/base/pod-defaults.yaml).
USER 10001:10001
EXPOSE 8000 8001 8002 8003
CMD ["hookyard-ingest"]
