"""The embedded default's app: SQLite in a temporary directory, no Redis, mail to the test
SMTP server."""

import pytest
from flask_migrate import upgrade

from shop import create_app


@pytest.fixture
def embedded_app(tmp_path, smtp, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    controller, _ = smtp
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.db'}",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": controller.port,
            "RATE_LIMIT_ANON": "100000 per minute",
        }
    )
    with app.app_context():
        upgrade()
    return app
