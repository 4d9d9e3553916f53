"""`python -m clinic.notification`: serve on NOTIFICATION_HOST:NOTIFICATION_PORT."""

from clinic.notification.main import create_app
from clinic.notification.settings import NotificationSettings
from clinic.platform.service import serve

serve(create_app, NotificationSettings())
