"""Events the accounts domain publishes (see shop.bus)."""

from __future__ import annotations

from dataclasses import dataclass

from shop.bus import Event


@dataclass(frozen=True)
class UserRegistered(Event, name="user.registered"):
    user_id: int
    role: str


@dataclass(frozen=True)
class UserRoleChanged(Event, name="user.role_changed"):
    user_id: int
    role: str
    previous_role: str


@dataclass(frozen=True)
class UserEmailVerified(Event, name="user.email_verified"):
    """An account's address proved (a code, a reset link, or made so by an admin)."""

    user_id: int
    email: str
