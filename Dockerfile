# Image for the migrations, the worker, the beat and the one-off commands of docker-compose.yml.
FROM python:3.11.13-slim-bookworm
WORKDIR /app
COPY pyproject.toml celeryconfig.py ./
COPY events_schema ./events_schema
COPY worker ./worker
RUN pip install --no-cache-dir . && useradd --system --no-create-home engine
USER engine
CMD ["celery", "-A", "worker", "worker", "--loglevel=info"]
