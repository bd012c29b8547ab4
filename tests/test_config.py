"""Settings: production refuses unsafe secrets; the environment and the embedded default."""

from flask import Flask

from shop.config import DEFAULT_SECRET, ConfigError, load_config


def test_production_refuses_default_secrets(other_app):
    try:
        other_app(SHOP_ENV="production", SECRET_KEY=DEFAULT_SECRET, JWT_SECRET_KEY=DEFAULT_SECRET)
    except ConfigError as error:
        assert "SECRET_KEY" in str(error) and "JWT_SECRET_KEY" in str(error)
    else:
        raise AssertionError("production started with default secrets")


def test_production_refuses_short_secrets(other_app):
    try:
        other_app(SHOP_ENV="production", SECRET_KEY="short", JWT_SECRET_KEY="j" * 40)
    except ConfigError as error:
        assert "SECRET_KEY" in str(error) and "JWT_SECRET_KEY" not in str(error)
    else:
        raise AssertionError("production started with a short secret")


def test_production_starts_with_real_secrets(other_app):
    app = other_app(SHOP_ENV="production", SECRET_KEY="s" * 40, JWT_SECRET_KEY="j" * 40)
    assert isinstance(app, Flask)


def test_secrets_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "from-env-" + "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example/shop")
    config = load_config(str(tmp_path), {})
    assert config["SECRET_KEY"].startswith("from-env-")
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql://u@db.example/shop"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("REDIS_URL", raising=False)
    embedded = load_config(str(tmp_path), {})
    assert embedded["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'shop.db'}"
    assert embedded["CACHE_TYPE"] == "SimpleCache"
