"""The domain event bus: a service publishes typed events inside its unit of work and never
names who reacts; the reacting domain declares a `Subscriber`, and create_app registers them.

A subscriber runs either inside the publisher's transaction (cheap bookkeeping such as a report
day marked dirty or a cache version to bump: it commits or rolls back with the change), or,
`durable`, after commit through the outbox: the event is written in the same transaction,
serialised by its payload schema, and a worker hands it to the subscriber once (retried as
every outbox message is, up to outbox.MAX_ATTEMPTS; inline without Redis). A rolled-back unit
of work leaves no trace of its events either way.

Every event type has a name from one registry (`EVENT_TYPES`) and a payload schema built from
its fields, so any of them can be stored and published as data (what an event log, a feed or
a webhook needs).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import (
    Any,
    ClassVar,
    Generic,
    Self,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import marshmallow as ma
from flask import Flask, current_app
from werkzeug.utils import import_string

from shop import outbox
from shop.db import in_unit_of_work

EVENT_TYPES: dict[str, type[Event]] = {}


class Event:
    """A fact a domain announces. Subclasses are frozen dataclasses with a registered name:

    `@dataclass(frozen=True) class OrderCreated(Event, name="order.created"): ...`
    """

    name: ClassVar[str]

    def __init_subclass__(cls, *, name: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name in EVENT_TYPES:
            raise TypeError(f"event type {name!r} is already {EVENT_TYPES[name].__qualname__}")
        cls.name = name
        EVENT_TYPES[name] = cls

    def payload(self) -> dict[str, Any]:
        """The event as JSON-ready data (money as decimal strings, times in ISO 8601)."""
        data: dict[str, Any] = payload_schema(type(self)).dump(self)
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Self:
        return cls(**payload_schema(cls).load(data))


_FIELDS: dict[Any, Callable[..., ma.fields.Field[Any]]] = {
    int: lambda **kw: ma.fields.Integer(strict=True, **kw),
    str: ma.fields.String,
    bool: ma.fields.Boolean,
    Decimal: lambda **kw: ma.fields.Decimal(as_string=True, **kw),
    datetime: ma.fields.AwareDateTime,
    date: ma.fields.Date,
}


_schemas: dict[type[Event], ma.Schema] = {}


def payload_schema(event_type: type[Event]) -> ma.Schema:
    """A marshmallow schema of the event's fields (`X | None` fields may be null), built once."""
    if event_type in _schemas:
        return _schemas[event_type]
    hints = get_type_hints(event_type)
    declared: dict[str, ma.fields.Field[Any]] = {}
    for field in dataclasses.fields(event_type):  # type: ignore[arg-type]
        hint, optional = hints[field.name], False
        if get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
            (hint,) = [arg for arg in get_args(hint) if arg is not type(None)]
            optional = True
        declared[field.name] = _FIELDS[hint](required=True, allow_none=optional)
    schema = ma.Schema.from_dict(declared, name=f"{event_type.__name__}Payload")()
    _schemas[event_type] = schema
    return schema


E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Subscriber(Generic[E]):
    """`handler` reacts to `event`: in the publisher's transaction, or after commit through
    the outbox when `durable` (then it must be a module-level function). `when` filters in
    the transaction, so events nobody needs cost no outbox row."""

    event: type[E]
    handler: Callable[[E], object]
    durable: bool = False
    when: Callable[[E], bool] | None = None


def init_app(app: Flask, subscribers: Iterable[Subscriber[Any]]) -> None:
    by_type: dict[type[Event], list[Subscriber[Any]]] = {}
    for subscriber in subscribers:
        by_type.setdefault(subscriber.event, []).append(subscriber)
    app.extensions["bus"] = by_type


def publish(event: Event) -> None:
    """Hand `event` to its subscribers; only inside a unit of work, whose fate it shares."""
    if not in_unit_of_work():
        raise RuntimeError(f"{event.name} published outside a unit of work")
    subscribers: list[Subscriber[Any]] = current_app.extensions["bus"].get(type(event), [])
    for subscriber in subscribers:
        if subscriber.when is not None and not subscriber.when(event):
            continue
        if subscriber.durable:
            handler = subscriber.handler
            outbox.add(
                deliver,
                subscriber=f"{handler.__module__}.{handler.__qualname__}",
                event=event.name,
                data=event.payload(),
            )
        else:
            subscriber.handler(event)


def deliver(subscriber: str, event: str, data: dict[str, Any]) -> None:
    """The outbox task of a durable subscriber: rebuild the event, call the handler."""
    handler = import_string(subscriber)
    handler(EVENT_TYPES[event].from_payload(data))
