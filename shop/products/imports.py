"""Catalog import jobs (`POST /products/import`, `flask products import`): the upload checked
(its header: a 422 at once) and stored with its job, so that any worker on any host can run
it; the job run a batch of about BATCH rows at a time, each batch and the job's advance
committed together (a job run again, a worker having died, goes on after the last batch
committed, and never applies one twice); a dry run applies each batch and rolls it back.

With Redis the job goes to RQ after the upload's commit; on the embedded default it runs
inline there, as outbox messages do. `resume_imports` (a periodic job) starts again the jobs
left behind: Redis away at the upload, a worker killed, a run that failed.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import select

from shop.auth.models import User
from shop.db import after_commit, db, get_or_404, unit_of_work, utcnow
from shop.errors import TooLarge
from shop.products.import_batch import Outcome, Plan, apply_batch
from shop.products.import_rows import MAX_IMPORT_BYTES, Row, parse, read_header, records
from shop.products.models import CatalogImport, ImportStatus
from shop.queues import enqueue, handing_over, redis_connection

log = logging.getLogger(__name__)
BATCH = 1_000  # rows per unit of work (a product's variants stay in its batch)
MAX_ERRORS = 1_000  # row errors kept on a job (`failed` counts every refused row)
MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)  # a queued or running job untouched this long was left behind
JOB_TIMEOUT = 3600  # seconds: RQ's limit on one run (a run cut short goes on when retried)
Progress = Callable[[int, int], None]  # (rows in the batch just done, rows in the file)


def queue_import(
    actor: User | None, data: bytes, filename: str, *, dry_run: bool, dispatch: bool = True
) -> CatalogImport:
    """Store the upload as a queued job (413 past MAX_IMPORT_BYTES, 422 if its header is not
    the export's columns); after commit it goes to a worker (`dispatch`), else the caller runs
    it (the CLI)."""
    if len(data) > MAX_IMPORT_BYTES:
        raise TooLarge(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB.")
    encoding, _ = read_header(data)
    with unit_of_work():
        job = CatalogImport(
            dry_run=dry_run,
            created_by=actor.id if actor else None,
            filename=filename[:255],
            encoding=encoding,
            file=data,
            errors=[],
        )
        db.session.add(job)
        db.session.flush()
        if dispatch:
            after_commit(partial(_dispatch, job.id))
    return job


def get_import(job_id: int) -> CatalogImport:
    return get_or_404(CatalogImport, job_id)


def _dispatch(job_id: int) -> None:
    if redis_connection() is None:
        try:
            run_import(job_id)
        except Exception:
            log.exception("catalog import %s failed; resume-imports runs it again", job_id)
        return
    if not handing_over():
        return  # Redis is away: resume-imports sends it
    try:
        enqueue(run_import, job_id, job_id=f"catalog-import-{job_id}", timeout=JOB_TIMEOUT)
    except Exception:
        log.warning("could not hand catalog import %s to RQ now", job_id, exc_info=True)


def resume_imports() -> dict[str, int]:
    """The `resume-imports` job: send again the imports queued or running that nothing has
    moved for LEASE. Safe twice at once: a batch is applied by one run only."""
    with unit_of_work() as session:
        ids = session.scalars(
            select(CatalogImport.id).where(
                CatalogImport.status.in_([ImportStatus.QUEUED, ImportStatus.RUNNING]),
                CatalogImport.updated_at < utcnow() - LEASE,
            )
        ).all()
    for job_id in ids:
        _dispatch(job_id)
    return {"resumed": len(ids)}


def run_import(job_id: int, on_batch: Progress | None = None) -> dict[str, Any] | None:
    """The job (what RQ runs): every batch from the job's `next_row` on; its summary."""
    started = _start(job_id)
    if started is None:
        return None
    data, encoding, actor = started
    try:
        _, columns = read_header(data)
        plan = _plan(columns, data, encoding)
        with unit_of_work():
            job = _locked(job_id)
            job.total, position = plan.total, job.next_row
        for rows in _batches(columns, data, encoding, position):
            if not _apply(job_id, position, rows, plan, actor):
                return None  # another run of the job moved it on meanwhile
            position = rows[-1].number + 1
            if on_batch is not None:
                on_batch(len(rows), plan.total)
    except csv.Error as error:  # the file is not CSV after all: nothing more can be read
        return _finish(job_id, ImportStatus.FAILED, f"The file is not CSV: {error}.")
    except Exception as error:
        with unit_of_work():
            _locked(job_id).error = repr(error)[:2000]
        raise
    return _finish(job_id, ImportStatus.SUCCEEDED)


def summary(job: CatalogImport) -> dict[str, Any]:
    names = ("id", "status", "dry_run", "total", "processed", "created", "updated", "unchanged",
             "failed", "error")  # fmt: skip
    return {name: getattr(job, name) for name in names}


def _locked(job_id: int) -> CatalogImport:
    job = db.session.get(CatalogImport, job_id, with_for_update=True, populate_existing=True)
    assert job is not None, f"catalog import {job_id} is gone"
    return job


def _start(job_id: int) -> tuple[bytes, str, User | None] | None:
    """Mark the job running (one more attempt) and read its file; None when it is over."""
    with unit_of_work() as session:
        job = session.get(CatalogImport, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status in (ImportStatus.SUCCEEDED, ImportStatus.FAILED):
            return None
        if job.attempts >= MAX_ATTEMPTS:
            job.status, job.finished_at, job.file = ImportStatus.FAILED, utcnow(), None
            job.error = f"Stopped after {job.attempts} attempts: {job.error}"
            return None
        job.status = ImportStatus.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or utcnow()
        data = session.scalar(select(CatalogImport.file).where(CatalogImport.id == job_id))
        actor = session.get(User, job.created_by) if job.created_by else None
        encoding = job.encoding
    assert data is not None
    return data, encoding, actor


def _plan(columns: list[str], data: bytes, encoding: str) -> Plan:
    """The file read through once: how many rows, each SKU's first row, variants' products."""
    sku = columns.index("sku")
    product_sku = columns.index("product_sku") if "product_sku" in columns else None
    total, first_rows, parents = 0, dict[str, int](), set[str]()
    for number, cells in records(data, encoding):
        total += 1
        cells += [""] * (len(columns) - len(cells))
        first_rows.setdefault(cells[sku].strip().lower(), number)
        if product_sku is not None and cells[product_sku].strip():
            parents.add(cells[product_sku].strip().lower())
    return Plan(total, first_rows, parents)


def _batches(columns: list[str], data: bytes, encoding: str, start: int) -> Iterator[list[Row]]:
    """The rows from `start` on, parsed, about BATCH at a time: a batch ends before a product's
    row, so that the export's variants are in their product's batch."""
    batch: list[Row] = []
    for number, cells in records(data, encoding):
        if number < start:
            continue
        row = parse(columns, number, cells)
        if len(batch) >= BATCH and row.product_sku is None:
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


class _RolledBack(Exception):
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def _apply(job_id: int, position: int, rows: list[Row], plan: Plan, actor: User | None) -> bool:
    """Apply a batch and move the job on, in one unit of work (a dry run's batch in one of
    its own, rolled back); False when another run has moved the job on already."""
    with unit_of_work():
        job = _locked(job_id)
        if job.status != ImportStatus.RUNNING or job.next_row != position:
            return False
        if not job.dry_run:
            _advance(job, rows, apply_batch(rows, plan, actor=actor, job_id=job_id))
            return True
    try:
        with unit_of_work():
            raise _RolledBack(apply_batch(rows, plan, actor=actor, job_id=job_id))
    except _RolledBack as rolled:
        outcome = rolled.outcome
    with unit_of_work():
        job = _locked(job_id)
        if job.status != ImportStatus.RUNNING or job.next_row != position:
            return False
        _advance(job, rows, outcome)
    return True


def _advance(job: CatalogImport, rows: list[Row], outcome: Outcome) -> None:
    job.next_row = rows[-1].number + 1
    job.processed += len(rows)
    job.created += len(outcome.created)
    job.updated += len(outcome.updated)
    job.unchanged += outcome.unchanged
    job.failed += outcome.failed
    room = MAX_ERRORS - len(job.errors)
    if room > 0 and outcome.errors:
        job.errors = [*job.errors, *outcome.errors[:room]]


def _finish(job_id: int, status: ImportStatus, error: str | None = None) -> dict[str, Any]:
    with unit_of_work():
        job = _locked(job_id)
        job.status, job.finished_at, job.file = status, utcnow(), None
        job.error = error
    return summary(job)
