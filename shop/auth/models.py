"""Users, their single-use codes and tokens (emailed and texted), and the refresh-token
families behind rotation."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, func, true
from sqlalchemy.orm import Mapped, mapped_column

from shop.db import Base, TimestampMixin
from shop.security import Role


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {tuple(r.value for r in Role)}", name="role"),
        Index("ix_users_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    last_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(32), default="", server_default="")  # E.164
    # When a texted code proved the phone (auth.phone); a new number is unverified.
    phone_verified_at: Mapped[datetime | None]
    date_of_birth: Mapped[date | None]
    role: Mapped[str] = mapped_column(
        String(16), default=Role.CUSTOMER.value, server_default=Role.CUSTOMER.value, index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true(), index=True)
    email_verified_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # Bumped by a password change, a reset or a deactivation: older tokens stop working.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Two-factor (auth.two_factor): the TOTP secret (set up, then enabled by a first code),
    # and the time step of the last code accepted (a code is accepted once).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None]

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def phone_verified(self) -> bool:
        return self.phone_verified_at is not None

    def has_role(self, role: Role) -> bool:
        """Whether the user has `role` (see Role.includes: an admin has every role)."""
        return Role(self.role).includes(role)


# Emails are unique whatever their case; lookups go through this index too.
Index("uq_users_email_lower", func.lower(User.email), unique=True)
# A verified phone is one account's (codes texted to it log that account in); the lookup of
# a login or reset by phone goes through this index.
VERIFIED_PHONE = User.phone_verified_at.is_not(None)
Index(
    "uq_users_verified_phone",
    User.phone,
    unique=True,
    postgresql_where=VERIFIED_PHONE,
    sqlite_where=VERIFIED_PHONE,
)


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    MFA_LOGIN = "mfa_login"  # the second step of a login with two-factor on


class PhonePurpose(enum.StrEnum):
    VERIFY = "verify_phone"
    LOGIN = "login"
    RESET_PASSWORD = "reset_password"


class PhoneCode(Base):
    """A six-digit code texted to a user's phone (auth.phone), as a keyed digest: one per user
    and purpose (a new one replaces it), spent by its use or by its fifth wrong guess."""

    __tablename__ = "phone_codes"
    __table_args__ = (UniqueConstraint("user_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(32))  # the number it was texted to
    digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RecoveryCode(Base):
    """One of a user's ten single-use two-factor recovery codes, as a keyed digest."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class UserToken(Base):
    """An email verification code, a password reset token or a login's two-factor step,
    stored as a keyed digest."""

    __tablename__ = "user_tokens"
    __table_args__ = (Index("ix_user_tokens_user_purpose", "user_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LoginSession(Base):
    """One login: its refresh-token family (the id), where it came from and when it was
    last refreshed. Revoking it ends the family and, at the next request, its access tokens
    (they carry the family: see tokens.load_token_user)."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    ip: Mapped[str] = mapped_column(String(45), default="", server_default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]


class RefreshToken(Base):
    """Every refresh token issued; a family is one login's chain of rotations."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(36), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RevokedToken(Base):
    """Access tokens revoked before they expire (logout)."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
