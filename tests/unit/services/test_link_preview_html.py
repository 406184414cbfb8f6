"""Reading a page for its preview, and finding the link a message previews: Open Graph
before Twitter before <title>, relative pictures resolved, only http(s) pictures, broken
markup tolerated, text cleaned and bounded; links in code ignored, punctuation trimmed."""

from __future__ import annotations

from parley.services.link_preview_html import (
    MAX_DESCRIPTION_CHARS,
    first_link,
    summarise,
)


def test_open_graph_first_then_twitter_then_the_title() -> None:
    page = """<html><head><title>Plain</title>
    <meta name="twitter:title" content="Bird">
    <meta property="og:title" content="Graph">
    <meta name="description" content="Plain description">
    <meta name="twitter:image" content="https://cdn.example/bird.png">
    </head><body><meta property="og:image" content="https://late.example/x.png"></body></html>"""
    summary = summarise(page, "https://example.com/a/b")
    assert summary.title == "Graph"
    assert summary.description == "Plain description"
    assert summary.image_url == "https://cdn.example/bird.png"  # nothing read after <body>
    assert summary.site_name == "example.com"
    assert summarise("<title> Just  this </title>", "https://x.example/").title == "Just this"


def test_pictures_are_resolved_and_only_http() -> None:
    relative = summarise('<meta property="og:image" content="../img/p.jpg"><title>t</title>', "https://example.com/a/b/")
    assert relative.image_url == "https://example.com/a/img/p.jpg"
    for bad in ("javascript:alert(1)", "data:image/png;base64,AAAA", "file:///etc/passwd"):
        summary = summarise(f'<meta property="og:image" content="{bad}"><title>t</title>', "https://example.com/")
        assert summary.image_url is None, bad


def test_broken_markup_entities_control_characters_and_length() -> None:
    page = "<head><title>Caf&eacute; &amp; bar\x00\x07</title><meta property='og:description' content='" + "é" * 2000 + "'><meta"
    summary = summarise(page, "https://example.com")
    assert summary.title == "Café & bar"
    assert summary.description is not None and len(summary.description) == MAX_DESCRIPTION_CHARS
    assert summary.description.endswith("…")
    assert summarise("", "https://example.com").empty
    assert summarise("<<<>>>&&&;", "https://example.com").empty


def test_the_first_link_outside_code() -> None:
    assert first_link("see https://example.com/a_(b).") == "https://example.com/a_(b)"
    assert first_link("(https://example.com/x), and http://other.example") == "https://example.com/x"
    assert first_link("`https://in.code` then https://out.example/!") == "https://out.example/"
    assert first_link("```\nhttps://in.block\n``` no link") is None
    assert first_link("mail me: me@https://x.example or ftp://x.example") is None
    assert first_link("[docs](https://docs.example/page)") == "https://docs.example/page"
    assert first_link("https://" + "a" * 3000 + ".example") is None
