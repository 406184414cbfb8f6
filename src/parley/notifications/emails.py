"""The emails Parley sends, as plain text and HTML: address verification, password reset,
and the digest of missed messages with its one-click unsubscribe (RFC 8058).

Everything a user wrote (names, message text) is escaped in the HTML part; the HTML is a
plain table layout with inline styles, which mail clients render (they ignore style sheets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from parley.clock import isoformat
from parley.notifications.mailer import OutgoingEmail

BRAND = "Parley"


@dataclass(frozen=True, slots=True)
class DigestLine:
    sender: str
    text: str
    sent_at: datetime
    link: str


@dataclass(frozen=True, slots=True)
class DigestSection:
    title: str
    link: str
    lines: tuple[DigestLine, ...]


def _html_page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title></head>"
        "<body style=\"margin:0;padding:24px;background:#f5f6f8;"
        "font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1d1e22\">"
        "<table role=\"presentation\" width=\"100%\" style=\"max-width:600px;margin:0 auto;"
        "background:#ffffff;border-radius:8px;padding:24px\"><tr><td>"
        f"{body}</td></tr></table></body></html>"
    )


def verification_email(
    *, to: str, display_name: str, link: str, valid_hours: int, job_id: str
) -> OutgoingEmail:
    subject = f"Confirm your email address for {BRAND}"
    text = (
        f"Hello {display_name},\n\n"
        f"Open this link to confirm that {to} is your address on {BRAND}:\n\n"
        f"{link}\n\n"
        f"The link works for {valid_hours} hours. If you did not ask for this, ignore this "
        "email: nothing is sent to this address until it is confirmed.\n"
    )
    html = _html_page(
        subject,
        f"<p>Hello {escape(display_name)},</p>"
        f"<p>Confirm that <strong>{escape(to)}</strong> is your address on {BRAND}:</p>"
        f"<p><a href=\"{escape(link, quote=True)}\" style=\"display:inline-block;padding:10px 16px;"
        "background:#3b5bdb;color:#ffffff;border-radius:6px;text-decoration:none\">"
        "Confirm my address</a></p>"
        f"<p style=\"color:#5f6370;font-size:13px\">The link works for {valid_hours} hours. If you "
        "did not ask for this, ignore this email.</p>",
    )
    return OutgoingEmail(
        to=to, subject=subject, text=text, html=html, message_id=f"<verify-{job_id}@parley>"
    )


def password_reset_email(
    *, to: str, display_name: str, username: str, link: str, valid_minutes: int, job_id: str
) -> OutgoingEmail:
    subject = f"Reset your {BRAND} password"
    text = (
        f"Hello {display_name},\n\n"
        f"Someone asked to reset the password of {username} on {BRAND}. If it was you, open "
        f"this link and choose a new password:\n\n{link}\n\n"
        f"The link works once, for {valid_minutes} minutes. If you did not ask for this, "
        "ignore this email: your password stays as it is.\n"
    )
    html = _html_page(
        subject,
        f"<p>Hello {escape(display_name)},</p>"
        f"<p>Someone asked to reset the password of <strong>{escape(username)}</strong> on "
        f"{BRAND}. If it was you, choose a new password:</p>"
        f"<p><a href=\"{escape(link, quote=True)}\" style=\"display:inline-block;padding:10px 16px;"
        "background:#3b5bdb;color:#ffffff;border-radius:6px;text-decoration:none\">"
        "Choose a new password</a></p>"
        f"<p style=\"color:#5f6370;font-size:13px\">The link works once, for {valid_minutes} "
        "minutes. If you did not ask for this, ignore this email.</p>",
    )
    return OutgoingEmail(
        to=to, subject=subject, text=text, html=html, message_id=f"<reset-{job_id}@parley>"
    )


def digest_email(
    *,
    to: str,
    display_name: str,
    sections: list[DigestSection],
    unsubscribe_link: str,
    settings_link: str,
    digest_id: str,
) -> OutgoingEmail:
    count = sum(len(section.lines) for section in sections)
    noun = "message" if count == 1 else "messages"
    where = sections[0].title if len(sections) == 1 else f"{len(sections)} conversations"
    subject = f"{count} unread {noun} in {where} on {BRAND}"

    text_parts = [f"Hello {display_name},\n\nYou have {count} unread {noun} on {BRAND}.\n"]
    html_parts = [
        f"<p>Hello {escape(display_name)},</p><p>You have {count} unread {noun} on {BRAND}.</p>"
    ]
    for section in sections:
        text_parts.append(f"\n== {section.title} ==\n")
        html_parts.append(
            f"<h2 style=\"font-size:16px;margin:20px 0 8px\"><a href=\"{escape(section.link, quote=True)}\" "
            f"style=\"color:#1d1e22\">{escape(section.title)}</a></h2>"
        )
        for line in section.lines:
            when = isoformat(line.sent_at)[:16].replace("T", " ") + " UTC"
            text_parts.append(f"{line.sender} ({when}): {line.text}\n  {line.link}\n")
            html_parts.append(
                "<p style=\"margin:0 0 10px\">"
                f"<strong>{escape(line.sender)}</strong> "
                f"<span style=\"color:#5f6370;font-size:12px\">{escape(when)}</span><br>"
                f"{escape(line.text)} "
                f"<a href=\"{escape(line.link, quote=True)}\" style=\"font-size:13px\">Open</a></p>"
            )
    text_parts.append(
        f"\nNotification settings: {settings_link}\n"
        f"Stop these emails: {unsubscribe_link}\n"
    )
    html_parts.append(
        "<p style=\"color:#5f6370;font-size:12px;margin-top:24px\">"
        f"<a href=\"{escape(settings_link, quote=True)}\">Notification settings</a> · "
        f"<a href=\"{escape(unsubscribe_link, quote=True)}\">Unsubscribe from these emails</a></p>"
    )
    return OutgoingEmail(
        to=to,
        subject=subject,
        text="".join(text_parts),
        html=_html_page(subject, "".join(html_parts)),
        headers={
            # RFC 2369 + RFC 8058: mail clients show an unsubscribe button that POSTs
            # "List-Unsubscribe=One-Click" to this URL, without opening a page.
            "List-Unsubscribe": f"<{unsubscribe_link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
        message_id=f"<digest-{digest_id}@parley>",
    )
