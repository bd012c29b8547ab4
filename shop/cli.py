"""Command line: `flask --app wsgi create-admin | seed | jobs ...`."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from rq_scheduler import Scheduler
from werkzeug.serving import run_simple

from shop import schedule
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.accounts import create_admin as create
from shop.db import unit_of_work
from shop.errors import ShopError
from shop.inventory.ledger import find_ledger_drift
from shop.mail import kept_messages
from shop.products import imports
from shop.products.models import ImportStatus
from shop.queues import DEFAULT_QUEUE, redis_connection
from shop.recommendations.evaluate import evaluate
from shop.reports.aggregates import aggregate_day, today
from shop.seed import DEMO_ACCOUNTS, seed_demo

jobs_cli = AppGroup("jobs", help="Periodic jobs: list, run one now, register the schedule.")
inventory_cli = AppGroup("inventory", help="Inventory maintenance.")
reports_cli = AppGroup("reports", help="Sales aggregates.")
recommendations_cli = AppGroup("recommendations", help="Recommendations: their offline evaluation.")
mail_cli = AppGroup("mail", help="Email.")
products_cli = AppGroup("products", help="The catalog.")


@products_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
def products_import(file: Any, dry_run: bool) -> None:
    """Import products and variants from a CSV in the export's columns, as POST
    /products/import does (inline, with a progress bar); exit 1 when a row was refused."""
    try:
        job = imports.queue_import(None, file.read(), file.name, dry_run=dry_run, dispatch=False)
    except ShopError as error:
        raise click.ClickException(error.detail) from error
    with ExitStack() as stack:
        bars: list[Any] = []

        def progress(rows: int, total: int) -> None:
            if not bars:
                bars.append(stack.enter_context(
                    click.progressbar(length=total, label="rows", file=sys.stderr)
                ))  # fmt: skip
            bars[0].update(rows)

        imports.run_import(job.id, on_batch=progress)
    done = imports.get_import(job.id)
    for refused in done.errors:
        click.echo(f"row {refused['row']}, {refused['field'] or 'row'}: {refused['message']}")
    click.echo(json.dumps(imports.summary(done)))
    if done.status != ImportStatus.SUCCEEDED or done.failed:
        raise SystemExit(1)


@mail_cli.command("outbox")
@click.option("--last", default=5, show_default=True, help="How many messages.")
def mail_outbox(last: int) -> None:
    """Show the last emails kept because MAIL_SERVER is unset (newest last)."""
    messages = kept_messages(last)
    if not messages:
        click.echo("No emails kept (they are kept only while MAIL_SERVER is unset).")
    for message in messages:
        text = message.get_body(preferencelist=("plain",))
        click.echo(f"From: {message['From']}\nTo: {message['To']}\nDate: {message['Date'] or ''}")
        click.echo(f"Subject: {message['Subject']}\n")
        click.echo(text.get_content() if text is not None else "")
        click.echo("-" * 72)


@reports_cli.command("backfill")
@click.option("--since", "since", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%d"]), help="default: yesterday")
def reports_backfill(since: datetime, until: datetime | None) -> None:
    """Recompute the daily sales aggregates of a range of closed days."""
    last = until.date() if until else today() - timedelta(days=1)
    days = [since.date() + timedelta(days=n) for n in range((last - since.date()).days + 1)]
    days = [day for day in days if day < today()]
    with click.progressbar(days, label="days", file=sys.stderr) as bar:
        for day in bar:
            aggregate_day(day)
    with unit_of_work():
        record(
            Action.JOB_RUN,
            actor=None,
            target_type=Target.JOB,
            changes={"job": "daily-sales", "backfill": [str(since.date()), str(last)]},
        )
    click.echo(json.dumps({"days": len(days)}))


@inventory_cli.command("check")
def inventory_check() -> None:
    """Report products and variants whose stock differs from their ledger; exit 1 on drift."""
    drift = find_ledger_drift()
    for item in drift:
        click.echo(json.dumps(item))
    if drift:
        raise click.ClickException(f"{len(drift)} stock figures differ from their ledger")
    click.echo("stock matches the ledger everywhere")


@recommendations_cli.command("evaluate")
@click.option("--k", default=10, show_default=True, help="How long a list is scored.")
def recommendations_evaluate(k: int) -> None:
    """Hit rate and NDCG at k of each algorithm and of best sellers, each customer's last
    purchase held out (on the database's data: `flask seed --orders N` makes some)."""
    report = evaluate(k)
    click.echo(
        f"{report['users']} customers with a last purchase held out, {report['products']} products"
    )
    click.echo(f"{'algorithm':16} {f'hit_rate@{k}':>12} {f'ndcg@{k}':>10}")
    for name, figures in report["results"].items():
        click.echo(f"{name:16} {figures['hit_rate']:12.4f} {figures['ndcg']:10.4f}")


@jobs_cli.command("list")
def jobs_list() -> None:
    """List the periodic jobs and their cron schedules (UTC)."""
    for job in schedule.JOBS:
        click.echo(f"{job.name:24} {job.cron:16} {job.description}")


@jobs_cli.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """Run one periodic job now, inline."""
    try:
        result = schedule.run_job(name)
    except schedule.UnknownJob as error:
        raise click.UsageError(str(error)) from error
    click.echo(json.dumps(result, default=str))


@jobs_cli.command("schedule")
def jobs_schedule() -> None:
    """Register the cron schedule in rq-scheduler (idempotent)."""
    connection = redis_connection()
    if connection is None:
        raise click.ClickException("REDIS_URL is not set: there is no scheduler to register with.")
    result = schedule.sync(Scheduler(queue_name=DEFAULT_QUEUE, connection=connection))
    click.echo(json.dumps(result))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def serve(host: str, port: int) -> None:
    """The development server; without Redis it also runs the periodic jobs, in a thread."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if redis_connection() is None:
        schedule.InlineScheduler(app, tick=app.config["SCHEDULER_INTERVAL"]).start()
        click.echo("Periodic jobs run in this process (no REDIS_URL): flask jobs list")
    run_simple(host, port, app, threaded=True)


@click.command("create-admin")
@with_appcontext
@click.option("--email", required=True)
@click.option("--password", required=True)
def create_admin(email: str, password: str) -> None:
    """Create an admin account (or promote an existing one)."""
    try:
        user = create(email, password)
    except ShopError as error:
        raise click.ClickException(f"{error.detail} {error.errors or ''}".strip()) from error
    click.echo(f"admin {user.email} (id {user.id}) ready")


@click.command("seed")
@with_appcontext
@click.option("--customers", default=0, show_default=True, help="Generated customers to add.")
@click.option("--products", default=0, show_default=True, help="Generated products to add.")
@click.option(
    "--orders",
    default=0,
    show_default=True,
    help="Generated orders (and interactions) of the customers, over 180 days.",
)
def seed(customers: int, products: int, orders: int) -> None:
    """Demo accounts and catalog into an empty database; generated volume on request."""
    result = seed_demo(customers=customers, products=products, orders=orders)
    if result["demo_data"] == "created":
        click.echo(
            f"Demo data created: {result['demo_categories']} categories, "
            f"{result['demo_products']} products, and these accounts:"
        )
        for email, password, role, *_ in DEMO_ACCOUNTS:
            click.echo(f"  {role:9} {email:24} password {password}")
    else:
        click.echo("Demo data skipped: the database already has accounts.")
    if customers or products:
        click.echo(f"Generated {result['customers']} customers and {result['products']} products.")
    if orders:
        click.echo(f"Generated {result['orders']} orders, with their customers' interactions.")


def register_commands(app: Flask) -> None:
    app.cli.add_command(jobs_cli)
    app.cli.add_command(inventory_cli)
    app.cli.add_command(reports_cli)
    app.cli.add_command(recommendations_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(products_cli)
    app.cli.add_command(create_admin)
    app.cli.add_command(serve)
    app.cli.add_command(seed)
