# syntax=docker/dockerfile:1
# atm-simulator container: the authorization host (`atm host`), the migrate/seed commands
# (`atm db upgrade`, `atm db seed`) and the simulated ATM (`atm device`) all run from this image.
#
#   base          python:3.12-slim, the non-root user, common environment
#   dependencies  a virtualenv in /opt/venv with the locked runtime dependencies (cached layer)
#   production    dependencies + the application, runs `atm host` as the non-root user
#   development   production's venv + dev extras, source mounted, restarts on change (watchfiles)
#
# Ports: 8583 is the ISO-8583 link (TCP), 8080 the ops HTTP API (/health, /ready, ...).
# docs/deployment.md explains every stage, variable and port; tests/deploy checks this file
# against host/config.py.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 atm \
    && useradd --system --uid 10001 --gid atm --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin atm
WORKDIR /app

# Runtime dependencies only, at the exact versions and hashes of the lock file
# (requirements/runtime.txt, `make lock`), so that this layer is rebuilt only when the lock
# changes (the source changes far more often) and two builds install the same bytes.
FROM base AS dependencies
COPY requirements/runtime.txt ./requirements.txt
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir --require-hashes --no-deps -r requirements.txt \
    && rm requirements.txt

FROM base AS production
COPY --from=dependencies /opt/venv /opt/venv
COPY pyproject.toml README.md alembic.ini ./
COPY atm ./atm
COPY device ./device
COPY drivers ./drivers
COPY host ./host
COPY protocol ./protocol
COPY simulators ./simulators
COPY webpanel ./webpanel
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /app/var /app/statements \
    && chown -R atm:atm /app/var /app/statements
# Safe defaults for a container: listen on every interface, production mode (which refuses
# the development SECRET_KEY and PIN_PEPPER and requires OPS_API_TOKEN and
# TERMINAL_MASTER_KEYS: pass real ones at run time).
ENV ATM_DATA_DIR=/app/var \
    LINK_HOST=0.0.0.0 \
    LINK_PORT=8583 \
    OPS_HOST=0.0.0.0 \
    OPS_PORT=8080 \
    ENVIRONMENT=production \
    LOG_LEVEL=INFO \
    STATEMENT_OUTPUT_DIR=/app/statements
USER 10001:10001
EXPOSE 8583 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = bool(os.environ.get('OPS_TLS_CERT')); urllib.request.urlopen(('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('OPS_PORT', '8080') + '/health', timeout=4, context=ssl._create_unverified_context() if tls else None)"]
CMD ["atm", "host"]

# Development: the dev extras on top, the source bind-mounted by docker-compose over /app,
# and the host restarted whenever a Python file changes.
FROM production AS development
USER 0
COPY requirements/dev.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt -e ".[dev]" "watchfiles==1.3.0" \
    && rm /tmp/constraints.txt
ENV ENVIRONMENT=development \
    LOG_LEVEL=DEBUG
USER 10001:10001
CMD ["watchfiles", "--filter", "python", "atm host", "atm", "device", "drivers", "host", "protocol", "simulators"]
