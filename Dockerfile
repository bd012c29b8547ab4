# syntax=docker/dockerfile:1
# Build stage: resolve the locked dependencies into a virtualenv with uv.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Runtime stage: the virtualenv and the code, run as an unprivileged user.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    SHOP_ENV=production FLASK_APP=wsgi
RUN useradd --system --uid 10001 --home-dir /app shop
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=shop:shop wsgi.py worker.py realtime.py gunicorn.conf.py ./
COPY --chown=shop:shop shop ./shop
COPY --chown=shop:shop migrations ./migrations
RUN mkdir -p /app/instance && chown shop:shop /app/instance
USER shop
EXPOSE 8000 5001
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
# Workers: about 2 x cores + 1; override with GUNICORN_CMD_ARGS.
CMD ["gunicorn", "wsgi:app", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
