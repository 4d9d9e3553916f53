"""Every route of the booking service's internal API, by subject. Routes are thin: the
request body builds its command, ``answers.answer`` decides it and maps the outcome, and
``errors`` maps every refusal to problem+json.

Every command needs an ``Idempotency-Key`` header; the first answer to a key is returned
again for a repeat (with ``Idempotency-Replayed: true``) and nothing is written. Routes are
plain ``def``: the event store client blocks, so FastAPI runs them in its thread pool
instead of the event loop.
"""

from fastapi import APIRouter

from clinic.booking.api import appointments, operations, patients, reference_data, waitlist

router = APIRouter()
for subject in (reference_data, patients, appointments, waitlist, operations):
    router.include_router(subject.router)
