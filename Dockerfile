# Parley node image. Build: docker build -t parley .
FROM python:3.11-slim
RUN useradd --create-home --uid 1000 parley
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && mkdir -p /data && chown parley /data
USER parley
ENV PARLEY_HOST=0.0.0.0 PARLEY_PORT=8000 PARLEY_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["parley", "serve"]
