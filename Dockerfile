# The app image that docker-compose.yml runs: the same install and start command as scripts/start.sh.
FROM python:3.11-slim
WORKDIR /srv/preflab
COPY . .
RUN pip install --no-cache-dir -e .
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
# Applies migrations, then serves.
CMD ["preflab", "serve", "--host", "0.0.0.0", "--port", "8000"]
