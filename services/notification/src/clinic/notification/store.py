"""The projection's PostgreSQL tables: applying operations, and loading them back (checks,
tests)."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from clinic.notification import actions, delivery, dispatcher, messages, waitlist
from clinic.notification.projection import SCHEMA, Tables
from clinic.platform import rows
from clinic.platform.rows import Op

DDL = [
    """CREATE TABLE IF NOT EXISTS organizations (
        organization_id uuid PRIMARY KEY, name text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS locations (
        location_id uuid PRIMARY KEY, organization_id uuid NOT NULL, name text NOT NULL,
        time_zone text NOT NULL, address jsonb NOT NULL, retired boolean NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS appointment_types (
        appointment_type_id uuid PRIMARY KEY, organization_id uuid NOT NULL, name text NOT NULL,
        preparation text NOT NULL, reminder_plan jsonb NOT NULL, patient_facing jsonb NOT NULL,
        retired boolean NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS patients (
        patient_id uuid PRIMARY KEY, organization_id uuid NOT NULL, given_name text NOT NULL,
        family_name text NOT NULL, contacts jsonb NOT NULL, preferred_channel text NOT NULL,
        language text NOT NULL, consent_sms boolean NOT NULL, consent_email boolean NOT NULL,
        time_zone text, merged_into uuid, version integer NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS appointments (
        appointment_id uuid PRIMARY KEY, organization_id uuid NOT NULL, patient_id uuid NOT NULL,
        location_id uuid NOT NULL, appointment_type_id uuid NOT NULL, status text NOT NULL,
        start_at timestamptz NOT NULL, end_at timestamptz NOT NULL,
        hold_expires_at timestamptz, booked_at timestamptz, moved_at timestamptz,
        cancelled_at timestamptz, cancelled_by text, version integer NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS appointments_by_patient
        ON appointments (organization_id, patient_id, start_at)""",
    "ALTER TABLE appointments ADD COLUMN IF NOT EXISTS resources jsonb NOT NULL DEFAULT '[]'",
    "ALTER TABLE appointments ADD COLUMN IF NOT EXISTS attendance_confirmed_at timestamptz",
    """CREATE TABLE IF NOT EXISTS waitlist (
        entry_id uuid PRIMARY KEY, organization_id uuid NOT NULL, patient_id uuid NOT NULL,
        appointment_type_id uuid NOT NULL, location_ids jsonb NOT NULL, earliest date NOT NULL,
        latest date NOT NULL, times_of_day jsonb NOT NULL, provider_id uuid,
        joined_at timestamptz NOT NULL, active boolean NOT NULL)""",
    "ALTER TABLE waitlist ADD COLUMN IF NOT EXISTS priority integer NOT NULL DEFAULT 5",
    "ALTER TABLE waitlist ADD COLUMN IF NOT EXISTS weekdays jsonb NOT NULL DEFAULT '[]'",
    """CREATE INDEX IF NOT EXISTS waitlist_waiting
        ON waitlist (organization_id, appointment_type_id) WHERE active""",
    *messages.DDL,
    *dispatcher.DDL,
    *delivery.DDL,
    *actions.DDL,
    *waitlist.DDL,
]


async def apply_ops(conn: psycopg.AsyncConnection, ops: Iterable[Op]) -> None:
    await rows.apply_ops(conn, SCHEMA, ops)


async def load(conn: psycopg.AsyncConnection) -> Tables:
    """Every table, in memory."""
    tables = Tables()
    await rows.load_into(conn, SCHEMA, tables)
    return tables
