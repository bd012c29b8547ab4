"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from shop import create_app

app = create_app()
