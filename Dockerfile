# One image for every Hookyard service; the command picks the service.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
COPY pyproject.toml uv.lock README.md ./
COPY libs libs
COPY services services
COPY cli cli
# Runtime dependencies only, exactly as locked; the project itself as a wheel.
RUN uv sync --locked --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin hookyard
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOOKYARD_HTTP_HOST=0.0.0.0
USER 10001
EXPOSE 8000 8001 8002 8003
CMD ["hookyard-ingest"]
