"""Notifications for people who are not looking (DESIGN §6.2): Web Push, email digests.

    events (message.created) ─► planner.NotificationTrigger ─► job notify.plan (delayed)
    notify.plan ─► rules ─► ledger (notifications) ─┬► job notify.push per device ─► webpush
                                                    └► email rows ─► digests (sweep, claim, send)

- ``rules``: who is notified of what (levels, mutes, reading on any device, system messages).
- ``planner``, ``push_delivery``, ``digests``: the jobs, idempotent per (user, message,
  channel), retried with backoff, dead-lettered by the job queue; counted in /metrics.
- ``vapid``, ``webpush``, ``subscriptions``: RFC 8292 keys, RFC 8291/8030 sending, the
  browsers' subscriptions.
- ``mailer``, ``emails``, ``links``: SMTP, the emails' text and HTML, absolute links.

- ``email_addresses``: users' addresses, verified by a signed link.

Preferences live in ``services.notification_settings``.
``service.build_notifications`` puts them together for the container.
"""
