"""Named errors: one per rule, each with the problem type and HTTP status it becomes."""

from __future__ import annotations

from uuid import UUID

from clinic.platform.problems import Problem


class BookingError(Problem):
    """Base of every rule the booking decision enforces: a kind of the platform's problem,
    so every service answers it the same way (problem+json with its slug and status)."""

    status = 422
    slug = "booking-rule"
    title = "The request breaks a booking rule"


class NotFoundError(BookingError):
    """Unknown id, or an id of another organisation (indistinguishable on purpose)."""

    status = 404
    slug = "not-found"
    title = "No such resource in this organisation"

    def __init__(self, kind: str, identifier: UUID | str) -> None:
        super().__init__(
            f"{kind} {identifier} does not exist in this organisation",
            resource_kind=kind,
            id=str(identifier),
        )


class InvalidRequestError(BookingError):
    status = 422
    slug = "invalid-request"
    title = "The request is not valid"


class InvalidTimeError(BookingError):
    status = 422
    slug = "invalid-time"
    title = "The time is impossible or ambiguous"


class NonExistentLocalTimeError(InvalidTimeError):
    slug = "non-existent-local-time"
    title = "That wall-clock time does not exist (daylight saving change)"


class AmbiguousLocalTimeError(InvalidTimeError):
    slug = "ambiguous-local-time"
    title = "That wall-clock time happens twice (daylight saving change); give an offset"


class TimeUnavailableError(BookingError):
    """The time asked for cannot be had (taken, not worked, no free resource): the answer
    offers alternative starts."""

    status = 409
    slug = "time-unavailable"
    title = "The time is not available"


class SlotTakenError(TimeUnavailableError):
    slug = "slot-taken"
    title = "The time is already taken"


class ConcurrencyExhaustedError(SlotTakenError):
    slug = "slot-contended"
    title = "The time kept changing under concurrent bookings; try an alternative"


class OutsideWorkingHoursError(TimeUnavailableError):
    slug = "outside-working-hours"
    title = "A required resource is not working at that time"


class NoResourceAvailableError(TimeUnavailableError):
    slug = "no-resource-available"
    title = "No resource of the required pool is free at that time"


class TooSoonError(BookingError):
    status = 422
    slug = "minimum-notice"
    title = "The appointment starts too soon for this appointment type"


class TooFarAheadError(BookingError):
    status = 422
    slug = "maximum-horizon"
    title = "The appointment is further ahead than this appointment type allows"


class SessionFullError(SlotTakenError):
    slug = "session-full"
    title = "Every seat of this group session is taken"


class OverbookingNotAllowedError(TimeUnavailableError):
    slug = "overbooking-not-allowed"
    title = "The provider's overbooking allowance is used up"


class TooLateToCancelError(BookingError):
    status = 409
    slug = "too-late-to-cancel"
    title = "The cancellation cut-off has passed"


class TooLateToRescheduleError(BookingError):
    status = 409
    slug = "too-late-to-reschedule"
    title = "The cut-off for patients to move this appointment has passed"


class HoldExpiredError(BookingError):
    status = 409
    slug = "hold-expired"
    title = "The hold expired; its time may have been taken"


class InvalidTransitionError(BookingError):
    status = 409
    slug = "invalid-status-transition"
    title = "The appointment's status does not allow this"


class NotPatientBookableError(BookingError):
    status = 403
    slug = "not-patient-bookable"
    title = "Patients cannot book this appointment type themselves"


class StaffOnlyError(BookingError):
    status = 403
    slug = "staff-only"
    title = "Only clinic staff may do this"


class IdempotencyKeyReusedError(BookingError):
    status = 422
    slug = "idempotency-key-reused"
    title = "This request id was already used for a different request"


class AlreadyExistsError(BookingError):
    status = 409
    slug = "already-exists"
    title = "It already exists"


class PatientMergedError(BookingError):
    status = 409
    slug = "patient-merged"
    title = "This patient record was merged into another"


class IdentifierInUseError(BookingError):
    status = 409
    slug = "identifier-in-use"
    title = "Another patient already has this identifier"


class RetiredError(BookingError):
    status = 409
    slug = "retired"
    title = "This location, resource or appointment type is retired"


class VersionMismatchError(BookingError):
    """The client names the version it last read (HTTP ``If-Match``), and the aggregate has
    moved on since: deciding on what the client saw would overwrite a change it never saw."""

    status = 412
    slug = "version-mismatch"
    title = "It changed since the version the request names"
