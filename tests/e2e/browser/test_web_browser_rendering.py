"""The web client in a real Chromium — how messages are rendered: stored XSS in messages
and display names stays inert, and the Markdown renderer's output on tricky inputs."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, conversation_link, open_as

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
