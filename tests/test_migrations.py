"""The migrations build exactly what the models declare."""

from flask_migrate import check


def test_models_and_migrations_agree(app):
    with app.app_context():
        check()  # raises when autogenerate would find a difference
