# Image for the migrations, the worker, the beat and the one-off commands of docker-compose.yml.
# The base image by tag and digest; the Python dependencies exactly as requirements.lock pins
# them (scripts/lock), then the project itself without resolving anything again.
FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --requirement requirements.lock
COPY pyproject.toml celeryconfig.py ./
COPY events_schema ./events_schema
COPY worker ./worker
RUN pip install --no-cache-dir --no-deps . && useradd --system --no-create-home engine
USER engine
CMD ["celery", "-A", "worker", "worker", "--loglevel=info"]
