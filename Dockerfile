# The refunds worker (and CLI): `docker compose up --scale worker=N` runs N of these.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    REFUNDS_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY starter ./starter
COPY storage ./storage
COPY simulators ./simulators
COPY console ./console
COPY chaos ./chaos
COPY bench ./bench
COPY mutation ./mutation
COPY worker.py tuning.py wiring.py settings.py logs.py codec.py converter.py ./
RUN python -m console.vendor \
    && pip install . \
    && python -m compileall -q /app \
    && useradd --system --uid 10001 --home /app refunds \
    && install -d -m 0700 -o refunds /keys /secrets
USER refunds

# Metrics for Prometheus when REFUNDS_METRICS_PORT is set.
EXPOSE 9464
STOPSIGNAL SIGTERM
CMD ["refunds", "worker"]
