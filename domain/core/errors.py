"""Domain errors: each carries its HTTP status, a stable problem type slug and a title."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        keep_changes: bool = False,
        **extensions: Any,
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        # Security side effects (revoking a stolen token chain) must survive the error.
        self.keep_changes = keep_changes
        self.extensions = extensions


class ValidationFailedError(DomainError):
    status = 422
    slug = "validation-error"
    title = "The request is not valid"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailedError:
        return cls(message, errors=[{"field": field, "message": message}])


class AuthenticationRequiredError(DomainError):
    status = 401
    slug = "authentication-required"
    title = "Authentication required"


class InvalidCredentialsError(DomainError):
    status = 401
    slug = "invalid-credentials"
    title = "The credentials are not valid"


class AccessTokenStaleError(DomainError):
    status = 401
    slug = "access-token-stale"
    title = "Your access changed since this token was issued: refresh it"


class PermissionDeniedError(DomainError):
    status = 403
    slug = "forbidden"
    title = "You are not allowed to do this"


class NotFoundError(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class ConflictError(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class SlugTakenError(ConflictError):
    slug = "slug-taken"
    title = "The slug is already in use"


class EmailTakenError(ConflictError):
    slug = "email-taken"
    title = "An account with this email already exists"


class AgencyChoiceRequiredError(ConflictError):
    slug = "agency-choice-required"
    title = "You belong to several agencies: choose one"


class LastOwnerError(ConflictError):
    slug = "last-owner"
    title = "An agency must keep at least one owner"


class AlreadyMemberError(ConflictError):
    slug = "already-member"
    title = "This person is already a member of the agency"


class InvitationInvalidError(DomainError):
    status = 410
    slug = "invitation-invalid"
    title = "This invitation is no longer valid"


class PreconditionFailedError(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "The resource changed since you read it"


class IdempotencyKeyReusedError(DomainError):
    status = 422
    slug = "idempotency-key-reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyInProgressError(ConflictError):
    slug = "idempotency-request-in-progress"
    title = "A request with this Idempotency-Key is still being processed"


class PaymentRequiredError(DomainError):
    """The agency's plan or billing state does not allow this (HTTP 402)."""

    status = 402
    slug = "payment-required"
    title = "The agency's plan does not allow this"


class PlanLimitError(PaymentRequiredError):
    slug = "plan-limit-reached"
    title = "The plan's limit is reached"


class FrozenByPlanError(PaymentRequiredError):
    slug = "frozen-by-plan"
    title = "This is frozen: it is over the current plan's limit"


class BillingReadOnlyError(PaymentRequiredError):
    slug = "billing-read-only"
    title = "The agency is read-only for new scheduling until its payment is settled"
