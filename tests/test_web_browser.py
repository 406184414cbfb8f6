"""The web client in a real Chromium, through paths that need only REST: accounts and
sessions, groups, history, stored XSS, deep links, access checks, search, the renderer.

Real-time behaviour (live messages, typing, ticks, offline catch-up) is in
``test_web_realtime.py``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser_helpers import *  # noqa: F403 (fixtures)
from tests.browser_helpers import Browser, Rest, open_as, unique
from tests.conftest import TEST_PASSWORD


def conversation_link(page, conversation_id: str):
    return page.locator(f'.conv-item[data-conversation-id="{conversation_id}"]')


def message(page, text: str):
    return page.locator(".msg .msg-text", has_text=text)


def test_register_reload_logout_and_login(shots: Browser) -> None:
    context = shots.context()
    page = shots.page(context)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_role("link", name="Create an account").click()
    username = unique("reg")

    # Inline errors: the server's field messages land under the field.
    page.fill("#register-username", username)
    page.fill("#register-password", "short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#register-password-error")).to_contain_text("at least 10")

    page.fill("#register-display_name", "Regina Tester")
    page.fill("#register-password", TEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Welcome, Regina Tester")).to_be_visible()

    # The refresh token is in an HttpOnly cookie scoped to the auth path; nothing readable.
    cookies = {c["name"]: c for c in context.cookies()}
    assert (
        cookies["parley_refresh"]["httpOnly"] and cookies["parley_refresh"]["sameSite"] == "Strict"
    )
    assert cookies["parley_refresh"]["path"] == "/api/v1/auth"
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("JSON.stringify(localStorage)").find("refresh") < 0

    page.reload()
    expect(page.get_by_role("heading", name="Welcome, Regina Tester")).to_be_visible()

    page.get_by_role("button", name="Your account").click()
    page.get_by_role("menuitem", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.reload()
    expect(page.locator(".auth-card")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login$"))

    page.fill("#login-username", username)
    page.fill("#login-password", "wrong password entirely")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_contain_text("don't match")
    page.fill("#login-password", TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome, Regina Tester")).to_be_visible()
    assert not shots.errors, shots.errors


def test_dm_from_user_search_send_and_history_survives_reload(shots: Browser, rest: Rest) -> None:
    alice = rest.user("alice", "Alice Liddell")
    bob = rest.user("bob", "Bob Builder")
    page = open_as(shots, alice)
    page.get_by_role("button", name="New message").first.click()
    dialog = page.get_by_role("dialog", name="New message")
    dialog.get_by_role("searchbox").fill(bob.username)
    dialog.get_by_role("option", name=re.compile("Bob Builder")).click()
    expect(page.get_by_role("heading", name="Bob Builder", level=1)).to_be_visible()

    composer = page.get_by_role("textbox", name="Message Bob Builder")
    composer.fill("Hello **Bob**, see https://example.com/docs")
    composer.press("Enter")
    sent = message(page, "Hello Bob")
    expect(sent).to_be_visible()
    expect(sent.locator("strong")).to_have_text("Bob")
    expect(sent.locator("a")).to_have_attribute("href", "https://example.com/docs")
    expect(page.locator(".msg.is-pending")).to_have_count(0)

    # Shift+Enter is a line break, not a send.
    composer.fill("line one")
    composer.press("Shift+Enter")
    composer.type("line two")
    composer.press("Enter")
    expect(message(page, "line one").locator("br")).to_have_count(1)
    expect(page.locator(".msg.is-pending")).to_have_count(0)

    conversation_id = page.url.rsplit("/", 1)[1]
    history = rest.history(bob, conversation_id)
    assert [m["content"] for m in history] == [
        "Hello **Bob**, see https://example.com/docs",
        "line one\nline two",
    ]

    # A draft is kept per conversation, across a reload.
    composer.fill("an unfinished thought")
    page.wait_for_function(
        "() => Object.keys(localStorage).some(k => k.startsWith('parley.draft.'))"
    )
    page.reload()
    expect(message(page, "Hello Bob")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message Bob Builder")).to_have_value(
        "an unfinished thought"
    )

    # Bob sees the conversation with an unread badge and the preview.
    bob_page = open_as(shots, bob)
    item = conversation_link(bob_page, conversation_id)
    expect(item).to_contain_text("Alice Liddell")
    expect(item.locator(".badge")).to_have_text("2")
    expect(item.locator(".conv-preview")).to_contain_text("line one line two")
    item.click()
    expect(message(bob_page, "Hello Bob")).to_be_visible()
    expect(bob_page.locator(".unread-divider")).to_be_visible()
    expect(item.locator(".badge")).to_have_count(0)
    assert not shots.errors, shots.errors


def test_group_create_add_remove_and_settings(shots: Browser, rest: Rest) -> None:
    owner = rest.user("own", "Olivia Owner")
    bob = rest.user("gbob", "Gary Bob")
    carol = rest.user("gcar", "Carol Cole")
    page = open_as(shots, owner)
    page.get_by_role("button", name="New group").first.click()
    dialog = page.get_by_role("dialog", name="New group")
    dialog.get_by_label("Group name").fill("Launch crew")
    picker = dialog.get_by_role("searchbox")
    picker.fill(bob.username)
    dialog.get_by_role("option", name=re.compile("Gary Bob")).click()
    expect(dialog.locator(".chip")).to_have_text(["Gary Bob"])
    dialog.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("heading", name="Launch crew", level=1)).to_be_visible()
    expect(page.locator(".msg-system")).to_contain_text("created the group")

    page.get_by_role("button", name="Group settings").click()
    panel = page.get_by_role("complementary", name="Conversation details")
    expect(panel.locator(".member-row")).to_have_count(2)
    panel.get_by_role("button", name="Add people").click()
    add = page.get_by_role("dialog", name="Add people")
    add.get_by_role("searchbox").fill(carol.username)
    add.get_by_role("option", name=re.compile("Carol Cole")).click()
    add.get_by_role("button", name="Add", exact=True).click()
    expect(panel.locator(".member-row")).to_have_count(3)
    expect(page.locator(".msg-system", has_text="added Carol Cole")).to_be_visible()

    # Promote Carol, then remove Gary.
    panel.get_by_role("button", name="Actions for Carol Cole").click()
    page.get_by_role("menuitem", name="Make admin").click()
    expect(panel.locator(".member-row", has_text="Carol Cole").locator(".role-badge")).to_have_text(
        "Admin"
    )
    panel.get_by_role("button", name="Actions for Gary Bob").click()
    page.get_by_role("menuitem", name="Remove from group").click()
    page.get_by_role("dialog", name="Remove from group?").get_by_role(
        "button", name="Remove"
    ).click()
    expect(panel.locator(".member-row")).to_have_count(2)

    # Rename.
    panel.get_by_label("Name").fill("Launch crew 2")
    panel.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="Launch crew 2", level=1)).to_be_visible()
    conversation_id = page.url.rsplit("/", 1)[1]

    # The removed member has lost it; Carol has it.
    bob_page = open_as(shots, bob)
    expect(bob_page.locator(".conv-item")).to_have_count(0)
    bob_page.goto(f"/c/{conversation_id}")
    expect(
        bob_page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()
    carol_page = open_as(shots, carol)
    expect(conversation_link(carol_page, conversation_id)).to_contain_text("Launch crew 2")

    # Leaving.
    conversation_link(carol_page, conversation_id).click()
    carol_page.get_by_role("button", name="Group settings").click()
    carol_page.get_by_role("button", name="Leave group").click()
    carol_page.get_by_role("dialog", name="Leave this group?").get_by_role(
        "button", name="Leave group"
    ).click()
    expect(conversation_link(carol_page, conversation_id)).to_have_count(0)
    assert not shots.errors, shots.errors


XSS_PAYLOADS = [
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss = 'img'\">",
    "[click me](javascript:window.__xss='link')",
    "[click me](JaVaScRiPt:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[spaces]( javascript:alert(1) )",
    "[entity](&#106;avascript:alert(1))",
    "[<img src=x onerror=alert(1)>](https://example.com/ok)",
    "**<svg onload=alert(1)>**",
    "`<script>alert(1)</script>`",
    "```\n<iframe src=javascript:alert(1)></iframe>\n```",
    'https://example.com/"onmouseover="alert(1)',
    '<a href="javascript:alert(1)">plain html link</a>',
    "[x](vbscript:msgbox(1)) and [y](file:///etc/passwd)",
]


def test_stored_xss_renders_inert(shots: Browser, rest: Rest) -> None:
    attacker = rest.user("evil", "<img src=x onerror=\"window.__xss='name'\">")
    victim = rest.user("victim", "Victor Victim")
    conversation = rest.direct(attacker, victim)
    for payload in XSS_PAYLOADS:
        rest.send(attacker, conversation["id"], payload)
    page = open_as(shots, victim, f"/c/{conversation['id']}")
    texts = page.locator(".msg .msg-text")
    expect(texts).to_have_count(len(XSS_PAYLOADS))
    expect(texts.first).to_contain_text("<script>window.__xss = 'script'</script>")
    expect(page.locator(".msg-author").first).to_have_text(
        "<img src=x onerror=\"window.__xss='name'\">"
    )
    expect(conversation_link(page, conversation["id"]).locator(".conv-name")).to_have_text(
        "<img src=x onerror=\"window.__xss='name'\">"
    )
    # Hover and click everything that could carry a handler.
    for i in range(len(XSS_PAYLOADS)):
        texts.nth(i).hover()
    for link in page.locator(".msg-text a").all():
        href = link.get_attribute("href")
        assert re.match(r"^(https?:|mailto:)", href or ""), href
    assert page.evaluate("window.__xss") is None
    assert (
        page.locator(
            "#app script, #app iframe, #app svg[onload], .msg-text img, .msg-author img"
        ).count()
        == 0
    )
    assert (
        page.evaluate(
            "[...document.querySelectorAll('#app *')]"
            ".filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length"
        )
        == 0
    )
    assert not shots.dialogs, shots.dialogs
    assert not shots.errors, shots.errors


def test_markdown_renderer_unit(shots: Browser, rest: Rest) -> None:
    """The renderer, run in the browser on tricky inputs (no network needed)."""
    user = rest.user("md")
    page = open_as(shots, user)
    cases = page.evaluate(
        """async () => {
          const md = await import('/static/markdown.js');
          const { renderMarkdown, safeUrl, plainText, isJumbo } = md;
          const html = (text) => {
            const d = document.createElement('div');
            d.append(renderMarkdown(text, { me: 'meg' }));
            return d.innerHTML;  // serialising the result to compare it, in the test only
          };
          return {
            bold: html('**b** *i* _u_ ~~s~~ `c`'),
            nested: html('**bold _and italic_**'),
            snake: html('snake_case_name and 2*3*4'),
            code_block: html('before\\n```js\\nconst x = "<b>";\\n```\\nafter'),
            link: html('[Parley](https://example.com/a?b=1&c=2)'),
            bad_link: html('[x](javascript:alert(1))'),
            autolink: html('see https://example.com/path).'),
            mention: html('hi @meg and @someone. @me is too short'),
            email: html('mail a@example.com'),
            mailto: safeUrl('mailto:a@example.com'),
            js: safeUrl('javascript:alert(1)'),
            protocol_relative: safeUrl('//evil.example'),
            plain: plainText('**Hello** [there](https://x.y) `code`'),
            jumbo: [isJumbo('🎉'), isJumbo('👍🏽❤️'), isJumbo('hi 🎉'), isJumbo('🎉🎉🎉🎉')],
          };
        }"""
    )
    assert cases["bold"] == "<strong>b</strong> <em>i</em> <em>u</em> <del>s</del> <code>c</code>"
    assert cases["nested"] == "<strong>bold <em>and italic</em></strong>"
    assert cases["snake"] == "snake_case_name and 2*3*4"
    assert (
        cases["code_block"]
        == 'before<pre><code data-lang="js">const x = "&lt;b&gt;";</code></pre>after'
    )
    assert (
        cases["link"]
        == '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer nofollow ugc" title="https://example.com/a?b=1&amp;c=2">Parley</a>'
    )
    assert cases["bad_link"] == "[x](javascript:alert(1))"
    autolink = cases["autolink"]
    assert autolink.startswith('see <a href="https://example.com/path"')
    assert autolink.endswith(">https://example.com/path</a>).")
    assert cases["mention"] == (
        'hi <span class="mention mention-me" data-username="meg">@meg</span> and '
        '<span class="mention" data-username="someone">@someone</span>. @me is too short'
    )
    assert cases["email"] == "mail a@example.com"
    assert cases["mailto"] == "mailto:a@example.com"
    assert cases["js"] is None and cases["protocol_relative"] is None
    assert cases["plain"] == "Hello there code"
    assert cases["jumbo"] == [True, True, False, False]


def test_deep_link_to_a_message_500_back(shots: Browser, rest: Rest) -> None:
    alice = rest.user("deep", "Dee Linker")
    bob = rest.user("deepb", "Bo Linked")
    conversation = rest.group(alice, "History buffs", [bob])
    target = None
    for i in range(520):
        sent = rest.send(alice if i % 3 else bob, conversation["id"], f"history message number {i}")
        if i == 19:
            target = sent
    assert target is not None
    page = open_as(shots, bob, f"/c/{conversation['id']}/m/{target['id']}")
    highlighted = page.locator(f'.msg.is-highlighted[data-message-id="{target["id"]}"]')
    expect(highlighted).to_be_visible()
    expect(highlighted).to_contain_text("history message number 19")
    expect(highlighted).to_be_in_viewport()
    # Newer history loads as we scroll down; "jump to latest" gets us to the end.
    page.get_by_role("button", name=re.compile("Jump to latest")).click()
    expect(message(page, "history message number 519")).to_be_in_viewport()
    expect(page).to_have_url(re.compile(rf"/c/{conversation['id']}$"))
    # Copy link gives the same URL shape.
    expect(page.locator(".msg.is-highlighted")).to_have_count(0)

    # A quoted reply jumps to its original, loading history around it.
    reply = rest.send(bob, conversation["id"], "replying to an old one", reply_to_id=target["id"])
    page.reload()
    quote = page.locator(f'.msg[data-message-id="{reply["id"]}"] .msg-quote')
    expect(quote).to_contain_text("history message number 19")
    quote.click()
    expect(
        page.locator(f'.msg.is-highlighted[data-message-id="{target["id"]}"]')
    ).to_be_in_viewport()
    assert not shots.errors, shots.errors


def test_non_members_see_a_clear_no_access_view(shots: Browser, rest: Rest) -> None:
    insider = rest.user("ins")
    outsider = rest.user("outs")
    conversation = rest.group(insider, "Secret club", [])
    secret = rest.send(insider, conversation["id"], "the secret word is swordfish")
    rest.call(
        insider, "PATCH", f"/conversations/{conversation['id']}", json={"slug": unique("club")}
    )
    slug = rest.call(insider, "GET", f"/conversations/{conversation['id']}")["conversation"]["slug"]
    page = open_as(shots, outsider, f"/c/{conversation['id']}/m/{secret['id']}")
    expect(
        page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()
    expect(page.get_by_text("swordfish")).to_have_count(0)
    page.goto(f"/g/{slug}")
    expect(
        page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()
    page.goto("/c/does-not-exist")
    expect(
        page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()

    # A member following the slug link lands in the conversation.
    inside = open_as(shots, insider, f"/g/{slug}")
    expect(inside).to_have_url(re.compile(rf"/c/{conversation['id']}$"))
    expect(message(inside, "swordfish")).to_be_visible()

    # Logged out, a deep link survives the login.
    context = shots.context()
    fresh = shots.page(context)
    fresh.goto(f"/c/{conversation['id']}/m/{secret['id']}")
    expect(fresh).to_have_url(re.compile(r"/login$"))
    fresh.fill("#login-username", insider.username)
    fresh.fill("#login-password", TEST_PASSWORD)
    fresh.get_by_role("button", name="Log in").click()
    expect(fresh.locator(f'.msg.is-highlighted[data-message-id="{secret["id"]}"]')).to_be_visible()


def test_search_result_click_lands_on_the_message(shots: Browser, rest: Rest) -> None:
    alice = rest.user("srch", "Sam Searcher")
    bob = rest.user("srchb", "Rob Found")
    conversation = rest.direct(alice, bob)
    word = unique("zebra")
    found = rest.send(bob, conversation["id"], f"the {word} crossing is on Tuesday")
    for i in range(80):
        rest.send(alice, conversation["id"], f"filler message {i}")
    page = open_as(shots, alice)
    page.keyboard.press("Control+k")
    expect(page).to_have_url(re.compile(r"/search"))
    box = page.get_by_role("searchbox", name="Search messages")
    box.fill(word)
    box.press("Enter")
    result = page.locator(f'.search-result[data-message-id="{found["id"]}"]')
    expect(result).to_be_visible()
    expect(result.locator("mark")).to_have_text(word)
    expect(page.locator(".search-group-title")).to_contain_text("Rob Found")
    # Keyboard: down from the box focuses the first result, Enter opens it.
    box.press("ArrowDown")
    expect(result).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/c/{conversation['id']}/m/{found['id']}$"))
    target = page.locator(f'.msg.is-highlighted[data-message-id="{found["id"]}"]')
    expect(target).to_be_in_viewport()
    assert not shots.errors, shots.errors


def test_profile_sessions_and_contacts(shots: Browser, rest: Rest) -> None:
    alice = rest.user("prof", "Pat Profile")
    bob = rest.user("profb", "Quinn Contact")
    page = open_as(shots, alice, "/settings")
    name = page.get_by_label("Display name")
    name.fill("Pat P. Profile")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator("#toast")).to_contain_text("Profile saved")
    assert rest.call(alice, "GET", "/users/me")["user"]["display_name"] == "Pat P. Profile"
    sessions = page.get_by_role("list", name="Signed-in devices")
    expect(sessions.locator(".session-row")).to_have_count(2)  # the REST login and this one
    expect(sessions.locator(".session-row.is-current")).to_contain_text("This device")
    sessions.locator(".session-row:not(.is-current)").get_by_role("button", name="Sign out").click()
    expect(sessions.locator(".session-row")).to_have_count(1)

    # Contacts: request, accept on the other side, block and unblock.
    page.goto("/contacts")
    page.get_by_role("searchbox", name="Find people to add as contacts").fill(bob.username)
    page.get_by_role("option", name=re.compile("Quinn Contact")).click()
    expect(page.locator("#toast")).to_contain_text("Contact request sent")
    bob_page = open_as(shots, bob, "/contacts")
    bob_page.get_by_role("tab", name=re.compile("Requests")).click()
    bob_page.get_by_role("button", name="Accept").click()
    expect(bob_page.locator("#toast")).to_contain_text("is now a contact")
    bob_page.get_by_role("tab", name="Contacts").click()
    expect(bob_page.locator(".person-row")).to_contain_text("Pat P. Profile")
    bob_page.get_by_role("button", name="Block").click()
    bob_page.get_by_role("dialog").get_by_role("button", name="Block").click()
    bob_page.get_by_role("tab", name="Blocked").click()
    expect(bob_page.locator(".person-row")).to_contain_text("Pat P. Profile")
    bob_page.get_by_role("button", name="Unblock").click()
    expect(bob_page.locator(".person-row")).to_have_count(0)
    assert not shots.errors, shots.errors


@pytest.mark.parametrize("width", [360, 1280])
def test_layout_fits_from_360px(shots: Browser, rest: Rest, width: int) -> None:
    alice = rest.user("narrow", "Nara Row")
    bob = rest.user("narrowb", "Wide Bob")
    conversation = rest.direct(alice, bob)
    rest.send(bob, conversation["id"], "a long unbroken " + "word" * 60 + " in a message")
    page = open_as(shots, alice, viewport={"width": width, "height": 740})
    if width < 700:
        expect(page.locator(".sidebar")).to_be_visible()
        conversation_link(page, conversation["id"]).click()
        expect(page.locator(".sidebar")).to_be_hidden()
        page.get_by_role("link", name="Back to conversations").click()
        expect(page.locator(".sidebar")).to_be_visible()
        conversation_link(page, conversation["id"]).click()
    else:
        conversation_link(page, conversation["id"]).click()
    expect(message(page, "a long unbroken")).to_be_visible()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    expect(page.get_by_role("textbox", name="Message Wide Bob")).to_be_visible()


def test_unread_divider_and_infinite_scroll_up(shots: Browser, rest: Rest) -> None:
    alice = rest.user("scroll", "Sky Scroller")
    bob = rest.user("scrollb", "Bea Backlog")
    conversation = rest.direct(alice, bob)
    sent = [rest.send(bob, conversation["id"], f"backlog message {i}") for i in range(130)]
    rest.call(
        alice, "POST", f"/conversations/{conversation['id']}/read", json={"seq": sent[99]["seq"]}
    )
    page = open_as(shots, alice)
    item = conversation_link(page, conversation["id"])
    expect(item.locator(".badge")).to_have_text("30")
    expect(page).to_have_title(re.compile(r"^\(30\) "))
    item.click()
    divider = page.locator(".unread-divider")
    expect(divider).to_be_in_viewport()
    expect(divider.locator("xpath=following-sibling::*[1]")).to_contain_text("backlog message 100")

    # Scrolling up loads older pages, keeping the reading position, until the beginning.
    timeline = page.locator(".timeline")
    first = message(page, "backlog message 0")
    for _ in range(10):
        if first.count():
            break
        before = page.locator(".msg").count()
        timeline.evaluate("el => { el.scrollTop = 0; }")
        page.wait_for_function(f"() => document.querySelectorAll('.msg').length > {before}")
    expect(first).to_be_attached()
    expect(page.locator(".timeline-intro")).to_contain_text(
        "beginning of your conversation with Bea Backlog"
    )
    assert page.locator(".msg").count() == 130

    # Alt+Down / Alt+Up switch conversations from anywhere.
    other = rest.direct(alice, rest.user("scrollc", "Cy Other"))
    rest.send(alice, other["id"], "hello other")
    page.reload()
    expect(page.locator(".conv-item")).to_have_count(2)
    page.keyboard.press("Alt+ArrowDown")
    expect(page).to_have_url(re.compile(r"/c/"))
    first_url = page.url
    page.keyboard.press("Alt+ArrowDown")
    expect(page).not_to_have_url(first_url)
    assert not shots.errors, shots.errors


def png_bytes(width: int = 640, height: int = 400) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (79, 70, 229))
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(250, 204, 21)
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_attachments_upload_preview_and_render(shots: Browser, rest: Rest) -> None:
    alice = rest.user("att", "Ada Attacher")
    bob = rest.user("attb", "Bert Receiver")
    conversation = rest.direct(alice, bob)
    page = open_as(shots, alice, f"/c/{conversation['id']}")
    page.locator(".composer input[type=file]").set_input_files(
        [
            {"name": "chart.png", "mimeType": "image/png", "buffer": png_bytes()},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"meeting notes\nline two\n"},
        ]
    )
    chips = page.get_by_role("list", name="Attachments").get_by_role("listitem")
    expect(chips).to_have_count(2)
    expect(chips.first.locator(".file-chip-thumb")).to_be_visible()  # a local blob: preview
    expect(page.get_by_role("button", name="Send message")).to_be_enabled()
    composer = page.get_by_role("textbox", name="Message Bert Receiver")
    composer.fill("Q3 numbers attached")
    composer.press("Enter")
    expect(chips).to_have_count(0)

    bob_page = open_as(shots, bob, f"/c/{conversation['id']}")
    sent = bob_page.locator(".msg", has_text="Q3 numbers attached")
    image = sent.locator("img.attachment-img")
    expect(image).to_have_attribute("alt", "chart.png")
    bob_page.wait_for_function(
        "() => document.querySelector('img.attachment-img')?.naturalWidth > 0"
    )
    expect(sent.locator(".attachment-image")).to_have_attribute(
        "href", re.compile(r"^/api/v1/attachments/.+/original\?")
    )
    file = sent.locator(".attachment-file")
    expect(file).to_contain_text("notes.txt")
    expect(file).to_have_attribute("download", "notes.txt")
    expect(bob_page.locator(".conv-item .conv-preview")).to_contain_text("Q3 numbers attached")
    assert not shots.errors, shots.errors


def test_failed_send_offers_retry_and_delete(shots: Browser, rest: Rest) -> None:
    alice = rest.user("fail", "Fay Failing")
    bob = rest.user("failb", "Blake Blocker")
    conversation = rest.direct(alice, bob)
    rest.call(bob, "POST", "/blocks", json={"user_id": alice.id})
    page = open_as(shots, alice, f"/c/{conversation['id']}")
    composer = page.get_by_role("textbox", name="Message Blake Blocker")
    composer.fill("this one cannot go out")
    composer.press("Enter")
    failed = page.locator(".msg.is-failed", has_text="this one cannot go out")
    expect(failed).to_contain_text("Not sent")
    composer.fill("neither can this")
    composer.press("Enter")
    expect(page.locator(".msg.is-failed")).to_have_count(2)
    page.locator(".msg.is-failed", has_text="neither can this").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.locator(".msg.is-failed")).to_have_count(1)

    rest.call(bob, "DELETE", f"/blocks/{alice.id}")
    failed.get_by_role("button", name="Retry").click()
    expect(page.locator(".msg.is-failed, .msg.is-pending")).to_have_count(0)
    expect(message(page, "this one cannot go out")).to_have_count(1)
    assert [m["content"] for m in rest.history(bob, conversation["id"])] == [
        "this one cannot go out"
    ]


def test_a_session_revoked_elsewhere_ends_in_the_login_page(shots: Browser, rest: Rest) -> None:
    alice = rest.user("revoke", "Rev Oked")
    page = open_as(shots, alice)
    expect(page.get_by_role("heading", name="Welcome, Rev Oked")).to_be_visible()
    rest.call(alice, "POST", "/auth/logout-all")
    page.get_by_role("link", name="Settings").click()  # any API call notices
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".form-notice")).to_contain_text("Your session has ended")
    page.reload()
    expect(page.locator(".auth-card")).to_be_visible()
