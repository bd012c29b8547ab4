"""The command line: jobs, create-admin, seed."""

from sqlalchemy import func, select

from shop.auth.models import User
from shop.db import db
from shop.security import verify_password


def test_cli_jobs_list_run_and_schedule(app):
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0 and "purge-expired-tokens" in listed.output
    ran = runner.invoke(args=["jobs", "run", "purge-expired-tokens"])
    assert ran.exit_code == 0 and '"revoked_tokens": 0' in ran.output
    unknown = runner.invoke(args=["jobs", "run", "no-such-job"])
    assert unknown.exit_code == 2 and "No periodic job named 'no-such-job'" in unknown.output
    scheduled = runner.invoke(args=["jobs", "schedule"])
    assert scheduled.exit_code == 0 and "periodic-purge-expired-tokens" in scheduled.output
    again = runner.invoke(args=["jobs", "schedule"])
    assert '"added": []' in again.output


def test_cli_create_admin(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-admin", "--email", "Boss@example.com", "--password", "boss-pass-123"]
    )
    assert result.exit_code == 0, result.output
    login = client.post(
        "/api/v1/auth/login", json={"email": "boss@example.com", "password": "boss-pass-123"}
    )
    assert login.json["user"]["role"] == "admin"
    weak = runner.invoke(args=["create-admin", "--email", "x@example.com", "--password", "123"])
    assert weak.exit_code == 1 and "too weak" in weak.output
    again = runner.invoke(
        args=["create-admin", "--email", "boss@example.com", "--password", "other-pass-123"]
    )
    assert again.exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["users"])) == 1


def test_cli_seed_is_idempotent_and_generates_customers(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed", "--customers", "25"])
    assert first.exit_code == 0, first.output
    assert "Demo data created: 9 categories, 15 products" in first.output
    assert "admin@example.com" in first.output and "admin-pass-123" in first.output
    assert "Generated 25 customers and 0 products." in first.output
    second = runner.invoke(args=["seed"])
    assert second.output == "Demo data skipped: the database already has accounts.\n"
    with app.app_context():
        # admin, staff, customer and seller, then the 25 generated customers
        assert db.session.scalar(select(func.count()).select_from(User)) == 4 + 25
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        assert admin.role == "admin" and verify_password(admin.password_hash, "admin-pass-123")
