# syntax=docker/dockerfile:1
# Hybrid Orchestrator worker fleet: `fleet run` as a non-root user.

# --- build: wheels for the project and its dependencies --------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first, from pyproject alone, so this layer is cached across code changes.
COPY pyproject.toml README.md ./
RUN mkdir -p worker handlers \
    && touch worker/__init__.py handlers/__init__.py \
    && pip wheel --wheel-dir /wheels .
COPY worker ./worker
COPY handlers ./handlers
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime ----------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 FLEET_HEALTH_PORT=8080 FLEET_HEALTH_HOST=0.0.0.0 \
    FLEET_LOG_FORMAT=json
RUN groupadd --system --gid 10001 fleet \
    && useradd --system --uid 10001 --gid fleet --no-create-home --shell /usr/sbin/nologin fleet
COPY --from=build /wheels /wheels
# DL3013 (pin versions): with --no-index the only candidates are the wheels built above,
# whose versions pyproject.toml already fixes.
# hadolint ignore=DL3013
RUN pip install --no-index --find-links=/wheels hybrid-orchestrator-fleet \
    && rm -rf /wheels
USER 10001:10001
EXPOSE 8080
# Liveness: the poll loop made progress recently (see docs/operations.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["fleet", "check"]
# SIGTERM starts the graceful drain; keep the orchestrator's stop timeout above
# FLEET_SHUTDOWN_GRACE (ECS stopTimeout, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["fleet"]
CMD ["run"]
