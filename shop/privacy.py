"""Personal data: what every domain stores about a user, exported and erased through one
registry (GET /auth/me/export, DELETE /auth/me).

Each domain that keeps rows about users declares a `Contributor` in its `personal_data.py`:
the columns referencing users.id whose rows it exports, the ones it does not export and why,
the sections it adds to an export, and what it erases. create_app lists them all
(`init_app`); tests/auth/test_personal_data.py fails on any column referencing users.id that
no contributor names, so a new table cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from shop.db import in_unit_of_work


def erased_email(user_id: int) -> str:
    """The address an erased account keeps: unique, and never deliverable (RFC 2606) nor
    registrable (an address without a dot in its domain fails validation)."""
    return f"deleted-{user_id}@invalid"


@dataclass(frozen=True)
class Erasure:
    """The account being erased, as it was before: what erasers scrub."""

    user_id: int
    email: str

    @property
    def placeholder(self) -> str:
        return erased_email(self.user_id)


@dataclass(frozen=True)
class Contributor:
    """A domain's part. `exports` and `not_exported` name columns as "table.column"."""

    # Columns referencing users.id whose rows `export` puts in the user's export.
    exports: tuple[str, ...] = ()
    # user id -> {section: JSON-ready data}; a section is always present (empty if nothing).
    export: Callable[[int], Mapping[str, Any]] | None = None
    # Run inside the erasing unit of work, in create_app's order; it must not need the
    # account's row as it was (accounts' own eraser, one of them, anonymises it): `Erasure`
    # carries what was there.
    erase: Callable[[Erasure], None] | None = None
    # Columns referencing users.id it keeps out of the export -> why.
    not_exported: Mapping[str, str] = field(default_factory=dict)


def init_app(app: Flask, contributors: Iterable[Contributor]) -> None:
    app.extensions["personal_data"] = tuple(contributors)


def contributors() -> tuple[Contributor, ...]:
    registered: tuple[Contributor, ...] = current_app.extensions["personal_data"]
    return registered


def export(user_id: int) -> dict[str, Any]:
    """Every contributor's sections, in the order create_app lists them."""
    sections: dict[str, Any] = {}
    for contributor in contributors():
        if contributor.export is None:
            continue
        for name, data in contributor.export(user_id).items():
            if name in sections:
                raise RuntimeError(f"two contributors export a section {name!r}")
            sections[name] = data
    return sections


def erase(erasure: Erasure) -> None:
    """Every contributor's eraser, inside the caller's unit of work."""
    if not in_unit_of_work():
        raise RuntimeError("personal data erased outside a unit of work")
    for contributor in contributors():
        if contributor.erase is not None:
            contributor.erase(erasure)
