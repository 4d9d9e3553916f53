# syntax=docker/dockerfile:1
# The emr-bridge image. Build it from the repository root (the context needs uv.lock and libs/):
#   docker build -f deploy/docker/emr-bridge.Dockerfile -t clinic-emr-bridge .
# The builder stage installs clinic-emr-bridge with the workspace libs it needs, from
# uv.lock, into /app/.venv. The final stage is python:3.11-slim with that virtualenv only
# (no uv, no compilers, no sources), run as an unprivileged numeric user.

# uv at the Makefile's UV_VERSION (tests/deploy checks that they agree).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11-slim AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Bytecode is compiled here: the final image's root filesystem is read-only.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Third-party dependencies first, from the lock and the pyprojects alone: this layer is
# built again only when they change, not on every change of the code.
COPY uv.lock pyproject.toml ./
COPY libs/events/pyproject.toml libs/events/
COPY libs/platform/pyproject.toml libs/platform/
COPY services/emr-bridge/pyproject.toml services/emr-bridge/
RUN uv sync --frozen --no-default-groups --no-install-workspace --package clinic-emr-bridge
# Then the code, installed into the virtualenv (a copy, not a link to /src).
COPY libs/events libs/events
COPY libs/platform libs/platform
COPY services/emr-bridge services/emr-bridge
RUN uv sync --frozen --no-default-groups --no-editable --package clinic-emr-bridge

FROM python:3.11-slim
RUN groupadd --system --gid 10001 clinic \
    && useradd --system --uid 10001 --gid clinic --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin clinic
COPY --from=builder /app/.venv /app/.venv
# A container listens on every interface (the services' default, 127.0.0.1, is for laptops).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EMR_BRIDGE_HOST=0.0.0.0 \
    EMR_BRIDGE_MLLP_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8084 2575
ENTRYPOINT ["python", "-m", "clinic.emr_bridge"]
