"""The system view's answer: one part per dependency, each with its status."""

from __future__ import annotations

from marshmallow import fields, validate

from shop.schemas import AnswerSchema, BaseSchema, Timestamp

STATUSES = ("ok", "unavailable", "not configured")


class PartSchema(BaseSchema):
    """A part of the view: its figures when `status` is ok, else `error` says why not."""

    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    error = fields.String(metadata={"description": "why the part could not be read"})


class PoolSchema(BaseSchema):
    status = fields.String(required=True, metadata={"description": "SQLAlchemy's summary"})
    size = fields.Integer()
    checkedin = fields.Integer()
    checkedout = fields.Integer()
    overflow = fields.Integer()


class DatabaseSchema(PartSchema):
    version = fields.String()
    size_bytes = fields.Integer()
    pool = fields.Nested(PoolSchema, metadata={"description": "the answering process's pool"})


class RedisSchema(PartSchema):
    version = fields.String()
    used_memory_bytes = fields.Integer()
    used_memory_human = fields.String()
    maxmemory_bytes = fields.Integer(metadata={"description": "0: no limit"})
    connected_clients = fields.Integer()
    uptime_seconds = fields.Integer()


class QueueSchema(AnswerSchema):
    name = fields.String()
    depth = fields.Integer(metadata={"description": "jobs waiting"})
    started = fields.Integer(metadata={"description": "jobs running"})
    scheduled = fields.Integer(metadata={"description": "jobs waiting for their time (retries)"})
    failed = fields.Integer()


class WorkerSchema(AnswerSchema):
    name = fields.String()
    state = fields.String()
    queues = fields.List(fields.String())
    last_heartbeat = Timestamp(allow_none=True)
    birth = Timestamp(allow_none=True)
    current_job_id = fields.String(allow_none=True)


class QueuesSchema(PartSchema):
    queues = fields.List(fields.Nested(QueueSchema))
    workers = fields.List(fields.Nested(WorkerSchema))


class ScheduledJobSchema(AnswerSchema):
    name = fields.String()
    cron = fields.String(metadata={"description": "UTC"})
    next_run = Timestamp(allow_none=True, metadata={"description": "null: not registered"})


class SchedulerSchema(PartSchema):
    running = fields.Boolean(metadata={"description": "a scheduler process is registered"})
    since = Timestamp(allow_none=True)
    last_tick = Timestamp(allow_none=True, metadata={"description": "null: none lately"})
    jobs = fields.List(fields.Nested(ScheduledJobSchema))


class OutboxSchema(PartSchema):
    backlog = fields.Integer(metadata={"description": "messages not yet handled"})
    oldest_created_at = Timestamp(allow_none=True)
    given_up = fields.Integer(metadata={"description": "messages whose every attempt failed"})


class ProcessSchema(PartSchema):
    pid = fields.Integer()
    uptime_seconds = fields.Float()
    cpu_user_seconds = fields.Float()
    cpu_system_seconds = fields.Float()
    rss_bytes = fields.Integer(allow_none=True)
    max_rss_bytes = fields.Integer()
    threads = fields.Integer()
    cpu_count = fields.Integer(allow_none=True)
    load_average = fields.List(fields.Float())


class SystemSchema(AnswerSchema):
    checked_at = Timestamp()
    database = fields.Nested(DatabaseSchema)
    redis = fields.Nested(RedisSchema)
    queues = fields.Nested(QueuesSchema)
    scheduler = fields.Nested(SchedulerSchema)
    outbox = fields.Nested(OutboxSchema)
    process = fields.Nested(
        ProcessSchema, metadata={"description": "the process that answered (one web worker)"}
    )
