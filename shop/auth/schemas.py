"""Request and response bodies of the auth and users API."""

from datetime import date
from typing import Any, ClassVar, NotRequired, TypedDict

from marshmallow import ValidationError, fields, post_dump, validate, validates_schema

from shop.auth.phone_schemas import CODE_PATTERN, PhoneNumber
from shop.schemas import AnswerSchema, BaseSchema, Flag, PageArgsSchema, Timestamp
from shop.security import NOT_ALL_DIGITS, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, Role

_email = fields.Email(required=True, validate=validate.Length(max=254))
_password = fields.String(
    required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX_LENGTH)
)
# A password being chosen: the policy (accounts.check_password_policy) as clients can check it,
# bar "not the email address".
_new_password = fields.String(
    required=True,
    load_only=True,
    validate=validate.Length(max=PASSWORD_MAX_LENGTH),
    metadata={
        "minLength": PASSWORD_MIN_LENGTH,
        "pattern": NOT_ALL_DIGITS,
        "description": f"at least {PASSWORD_MIN_LENGTH} characters, not all digits, "
        "not the email address",
    },
)
_name = fields.String(validate=validate.Length(max=100))
MIN_AGE = 13


def _old_enough(born: date) -> None:
    today = date.today()
    if born > today:
        raise ValidationError("Not in the future.")
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < MIN_AGE:
        raise ValidationError(f"At least {MIN_AGE} years old.")


_date_of_birth = fields.Date(
    allow_none=True,
    validate=_old_enough,
    metadata={"description": f"optional; not in the future; at least {MIN_AGE} years ago"},
)
_phone = PhoneNumber(clearable=True)


class UserSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    email = fields.String(dump_only=True)
    first_name = fields.String(dump_only=True)
    last_name = fields.String(dump_only=True)
    phone = fields.String(dump_only=True, metadata={"description": "E.164, or empty"})
    phone_verified = fields.Boolean(dump_only=True)
    date_of_birth = fields.Date(dump_only=True, allow_none=True)
    role = fields.String(dump_only=True, metadata={"enum": [r.value for r in Role]})
    email_verified = fields.Boolean(dump_only=True)
    two_factor_enabled = fields.Boolean(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    created_at = Timestamp(dump_only=True)
    last_login_at = Timestamp(dump_only=True, allow_none=True)


class RegisterSchema(BaseSchema):
    email = _email
    password = _new_password
    first_name = _name
    last_name = _name
    phone = _phone
    date_of_birth = _date_of_birth


class Registration(TypedDict):
    """What RegisterSchema loads."""

    email: str
    password: str
    first_name: NotRequired[str]
    last_name: NotRequired[str]
    phone: NotRequired[str]
    date_of_birth: NotRequired[date | None]


class VerifyEmailSchema(BaseSchema):
    email = _email
    code = fields.String(required=True, validate=validate.Length(max=32))


class EmailOnlySchema(BaseSchema):
    email = _email


class LoginSchema(BaseSchema):
    email = fields.String(required=True, validate=validate.Length(max=254))
    password = _password


class TokenSchema(BaseSchema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class LoginResponseSchema(BaseSchema):
    """The tokens, or (two-factor on) the token of the login's second step."""

    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "seconds"})
    user = fields.Nested(UserSchema)
    mfa_required = fields.Boolean(metadata={"description": "two-factor on: POST /auth/login/2fa"})
    mfa_token = fields.String(metadata={"description": "valid 5 minutes; grants no access"})

    # Either every token field, or both mfa fields: stated in words, as a oneOf here would give
    # generated clients an untyped answer.
    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "access_token, refresh_token, token_type, expires_in and user; or, with"
        " two-factor on, mfa_required and mfa_token (then POST /auth/login/2fa)."
    }


class SessionSchema(AnswerSchema):
    id = fields.String()
    created_at = Timestamp()
    last_used_at = Timestamp(metadata={"description": "the login, or its last refresh"})
    ip = fields.String()
    user_agent = fields.String()
    current = fields.Boolean(metadata={"description": "the session of this request's token"})


class TokenVerifySchema(BaseSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class TokenVerdictSchema(AnswerSchema):
    valid = fields.Boolean(metadata={"description": "it would be accepted now"})
    type = fields.String(allow_none=True, metadata={"enum": ["access", "refresh", None]})
    exp = Timestamp(allow_none=True)
    user_id = fields.Integer(allow_none=True)


class TokensAndUserSchema(TokenSchema):
    user = fields.Nested(UserSchema, required=True)


class SecondStepSchema(BaseSchema):
    mfa_token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    code = fields.String(validate=validate.Regexp(r"^[0-9]{6}$", error="Six digits."))
    recovery_code = fields.String(validate=validate.Length(min=1, max=32))

    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "A code or a recovery code, one of them.",
        "oneOf": [{"required": ["code"]}, {"required": ["recovery_code"]}],
    }

    @validates_schema
    def _one_code(self, data: dict[str, Any], **_: Any) -> None:
        if ("code" in data) == ("recovery_code" in data):
            raise ValidationError("Give code or recovery_code (one of them).", "code")


class TwoFactorSetupSchema(AnswerSchema):
    secret = fields.String(metadata={"description": "base32, for typing into an app"})
    otpauth_uri = fields.String(metadata={"description": "also as a QR code: /auth/2fa/qr.png"})


class TwoFactorCodeSchema(BaseSchema):
    code = fields.String(
        required=True, validate=validate.Regexp(r"^[0-9]{6}$", error="Six digits.")
    )


class RecoveryCodesSchema(AnswerSchema):
    recovery_codes = fields.List(
        fields.String(), metadata={"description": "ten single-use codes, shown only now"}
    )


class TwoFactorDisableSchema(BaseSchema):
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "a code from the app, or a recovery code"},
    )


class LogoutSchema(BaseSchema):
    refresh_token = fields.String(validate=validate.Length(max=4096))


class ProfileUpdateSchema(BaseSchema):
    first_name = _name
    last_name = _name
    phone = _phone
    date_of_birth = _date_of_birth


class ProfileUpdate(TypedDict, total=False):
    """What ProfileUpdateSchema loads."""

    first_name: str
    last_name: str
    phone: str
    date_of_birth: date | None


class ChangePasswordSchema(BaseSchema):
    current_password = _password
    new_password = _new_password


class PasswordResetSchema(BaseSchema):
    email = fields.Email(validate=validate.Length(max=254))
    phone = PhoneNumber(metadata={"description": "a verified phone: a code is texted to it"})

    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "An email (a reset token is emailed) or a phone (a code is texted).",
        "oneOf": [{"required": ["email"]}, {"required": ["phone"]}],
    }

    @validates_schema
    def _one_address(self, data: dict[str, Any], **_: Any) -> None:
        if "email" not in data and "phone" not in data:
            raise ValidationError("Missing data for required field.", "email")
        if "email" in data and "phone" in data:
            raise ValidationError("Give email or phone (one of them).", "email")


class PasswordResetConfirmSchema(BaseSchema):
    token = fields.String(validate=validate.Length(max=128), metadata={"description": "emailed"})
    phone = PhoneNumber(metadata={"description": "with the code texted to it"})
    code = fields.String(validate=validate.Regexp(CODE_PATTERN, error="Six digits."))
    new_password = _new_password

    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "The emailed token, or the phone and the code texted to it.",
        "oneOf": [
            {"required": ["token"], "not": {"anyOf": [{"required": ["phone"]},
                                                      {"required": ["code"]}]}},
            {"required": ["phone", "code"], "not": {"required": ["token"]}},
        ],
    }  # fmt: skip

    @validates_schema
    def _token_or_code(self, data: dict[str, Any], **_: Any) -> None:
        if "token" in data and ("phone" in data or "code" in data):
            raise ValidationError("Give the token, or the phone and code (not both).", "token")
        if "token" not in data and "phone" not in data and "code" not in data:
            raise ValidationError("Missing data for required field.", "token")
        for field in ("phone", "code"):
            if "token" not in data and field not in data:
                raise ValidationError("Missing: give the token, or the phone and the code.", field)


class EraseAccountSchema(BaseSchema):
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=128)
    )


class SessionRecordSchema(AnswerSchema):
    """A session in the export: every one kept, ended ones too."""

    id = fields.String()
    ip = fields.String()
    user_agent = fields.String()
    created_at = Timestamp()
    last_used_at = Timestamp()
    revoked_at = Timestamp(allow_none=True)


class CodeRecordSchema(AnswerSchema):
    """A code or token sent, in the export (never the code: only its digest is kept)."""

    sent_to = fields.String(metadata={"enum": ["email", "phone"]})
    purpose = fields.String()
    phone = fields.String(allow_none=True, metadata={"description": "the number texted"})
    created_at = Timestamp()
    expires_at = Timestamp()
    used_at = Timestamp(allow_none=True)


class TwoFactorStatusSchema(AnswerSchema):
    enabled = fields.Boolean()
    enabled_at = Timestamp(allow_none=True)
    recovery_codes_left = fields.Integer()


class PersonalDataSchema(AnswerSchema):
    """Everything stored about the signed-in user: beside these two fields, one field per
    section (shop.privacy's contributors)."""

    user_id = fields.Integer()
    exported_at = Timestamp()

    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "Beside user_id and exported_at, a field per section, each always "
        "present: profile, two_factor, sessions, codes (accounts), addresses, cart, orders "
        "(each with its payments, refunds, returns, shipments), wishlist, reviews, events "
        "(the user's event feed), audit_entries (as actor and as subject). No secret, hash or "
        "token is in it.",
        "additionalProperties": True,
    }

    @post_dump(pass_original=True)
    def _sections(self, data: dict[str, Any], original: Any, **_: Any) -> dict[str, Any]:
        return {**data, **original["sections"]}


class UserQueryArgsSchema(PageArgsSchema):
    role = fields.String(validate=validate.OneOf([r.value for r in Role]))
    is_active = fields.Boolean()
    email = fields.String(
        validate=validate.Length(max=254), metadata={"description": "exact, any case"}
    )
    sort = fields.String(
        load_default="-created_at",
        validate=validate.OneOf(["created_at", "-created_at", "email", "-email"]),
    )


class UserAdminUpdateSchema(BaseSchema):
    role = fields.String(validate=validate.OneOf([r.value for r in Role]))
    is_active = Flag()


class UserAdminUpdate(TypedDict, total=False):
    """What UserAdminUpdateSchema loads."""

    role: str
    is_active: bool
