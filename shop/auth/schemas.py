"""Request and response bodies of the auth and users API."""

from typing import NotRequired, TypedDict

from marshmallow import fields, validate

from shop.schemas import BaseSchema, Flag, PageArgsSchema, Timestamp
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
_phone = fields.String(
    validate=validate.Regexp(r"^(|[0-9+()\-. ]{3,32})$", error="Not a valid phone number.")
)


class UserSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    email = fields.String(dump_only=True)
    first_name = fields.String(dump_only=True)
    last_name = fields.String(dump_only=True)
    phone = fields.String(dump_only=True)
    role = fields.String(dump_only=True, metadata={"enum": [r.value for r in Role]})
    email_verified = fields.Boolean(dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    created_at = Timestamp(dump_only=True)
    last_login_at = Timestamp(dump_only=True, allow_none=True)


class RegisterSchema(BaseSchema):
    email = _email
    password = _new_password
    first_name = _name
    last_name = _name
    phone = _phone


class Registration(TypedDict):
    """What RegisterSchema loads."""

    email: str
    password: str
    first_name: NotRequired[str]
    last_name: NotRequired[str]
    phone: NotRequired[str]


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


class LoginResponseSchema(TokenSchema):
    user = fields.Nested(UserSchema, required=True)


class LogoutSchema(BaseSchema):
    refresh_token = fields.String(validate=validate.Length(max=4096))


class ProfileUpdateSchema(BaseSchema):
    first_name = _name
    last_name = _name
    phone = _phone


class ProfileUpdate(TypedDict, total=False):
    """What ProfileUpdateSchema loads."""

    first_name: str
    last_name: str
    phone: str


class ChangePasswordSchema(BaseSchema):
    current_password = _password
    new_password = _new_password


class PasswordResetConfirmSchema(BaseSchema):
    token = fields.String(required=True, validate=validate.Length(max=128))
    new_password = _new_password


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
