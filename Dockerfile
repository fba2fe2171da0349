# The refunds worker (and CLI): `docker compose up --scale worker=N` runs N of these.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    REFUNDS_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY activities ./activities
COPY starter ./starter
COPY storage ./storage
COPY chaos ./chaos
COPY bench ./bench
COPY worker.py settings.py logs.py codec.py converter.py ./
RUN pip install . \
    && python -m compileall -q /app \
    && useradd --system --home /app refunds
USER refunds

# Metrics for Prometheus when REFUNDS_METRICS_PORT is set.
EXPOSE 9464
STOPSIGNAL SIGTERM
CMD ["refunds", "worker"]
