"""Composition root of the notification service."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI

import clinic.notification
from clinic.notification.api import links, routes, waitlist, webhooks
from clinic.notification.channels import Channel
from clinic.notification.clinics import Availability, Booking
from clinic.notification.consumer import TOPICS, ProjectionWriter
from clinic.notification.dispatcher import Dispatcher, DispatchMetrics, Policy
from clinic.notification.links import Signer
from clinic.notification.mail import EmailChannel, SmtpConfig
from clinic.notification.planning import QuietHours
from clinic.notification.settings import NotificationSettings
from clinic.notification.sms import SmsChannel, SmsConfig
from clinic.notification.store import DDL
from clinic.notification.waitlist import Offerer
from clinic.platform import dead_letters
from clinic.platform.service import create_runtime, create_service_app, subscribe_projection


def channels(settings: NotificationSettings) -> dict[str, Channel]:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    starttls = {"auto": None, "required": True, "off": False}[settings.smtp_starttls]
    email = EmailChannel(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=password,
            starttls=starttls,
            implicit_tls=settings.smtp_implicit_tls,
            timeout=settings.smtp_timeout_seconds,
            unsubscribe_mailto=settings.email_unsubscribe_mailto,
        ),
        connections=settings.smtp_connections,
    )
    sms = SmsChannel(
        SmsConfig(
            base_url=settings.sms_base_url,
            account_sid=settings.sms_account_sid,
            auth_token=settings.sms_auth_token.get_secret_value(),
            sender=settings.sms_from,
            status_callback_url=f"{settings.public_url.rstrip('/')}/sms/status",
        ),
        connections=settings.sms_connections,
    )
    return {"email": email, "sms": sms}


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    runtime = create_runtime(settings, topics=TOPICS)
    runtime.migrations += DDL
    app = create_service_app(
        runtime, title="clinic notification", description=clinic.notification.__doc__ or ""
    )
    app.state.settings = settings
    app.include_router(routes.router)
    app.include_router(dead_letters.router)
    app.include_router(waitlist.router)
    app.include_router(webhooks.router)
    app.include_router(links.router)
    app.state.link_metrics = links.LinkMetrics(runtime.registry)
    app.state.booking = booking = Booking(settings.booking_url)
    app.state.availability = availability = Availability(settings.availability_url)
    app.state.clock = lambda: dt.datetime.now(dt.UTC)
    signer = Signer(settings.link_secret.get_secret_value())
    app.state.signer = signer
    dispatcher = Dispatcher(
        runtime.database,
        channels(settings),
        signer,
        settings.public_url,
        DispatchMetrics(runtime.registry),
        Policy(
            batch_size=settings.dispatch_batch_size,
            lease=dt.timedelta(seconds=settings.dispatch_lease_seconds),
            max_attempts=settings.dispatch_max_attempts,
            backoff_base=dt.timedelta(seconds=settings.dispatch_backoff_seconds),
            backoff_cap=dt.timedelta(seconds=settings.dispatch_backoff_cap_seconds),
            rate_per_minute=settings.send_rate_per_minute,
        ),
        links_url=settings.links_url,
    )
    app.state.dispatcher = dispatcher
    writer = ProjectionWriter(
        runtime.registry,
        QuietHours(settings.quiet_hours_start, settings.quiet_hours_end),
        settings.default_language,
    )
    lag = subscribe_projection(
        runtime,
        TOPICS,
        settings.consumer_group,
        writer.write_one,
        writer.write_many,
        after_commit=dispatcher.wake,
    )
    offerer = Offerer(
        runtime.database,
        booking,
        writer.offer_metrics,
        QuietHours(settings.quiet_hours_start, settings.quiet_hours_end),
        settings.default_language,
        settings.offer_hold_minutes,
        settings.offer_notice_minutes,
        wake=dispatcher.wake,
    )

    async def started() -> None:
        lag.start()
        if settings.dispatch_enabled:
            dispatcher.start(settings.dispatch_interval_seconds)
        if settings.offers_enabled:
            offerer.start(settings.dispatch_interval_seconds)

    runtime.started = started
    runtime.stopping += [offerer.stop, dispatcher.stop, booking.close, availability.close]
    return app
