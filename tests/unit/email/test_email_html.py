"""HTML bodies become readable text; quoted blocks are marked for stripping."""

from __future__ import annotations

import pytest

from normalizer.email.html import html_to_text

pytestmark = pytest.mark.unit


def test_blocks_breaks_and_entities_become_lines():
    html = "<div>Bonjour&nbsp;!</div><p>Montant&nbsp;: 500&amp;plus<br>Agence</p>"
    assert html_to_text(html) == "Bonjour !\nMontant : 500&plus\nAgence"


def test_script_style_and_head_vanish():
    html = "<head><title>T</title><style>p{}</style></head><script>x()</script><p>ok</p>"
    assert html_to_text(html) == "ok"


def test_list_items_get_a_dash_and_cells_a_tab():
    html = "<ul><li>un</li><li>deux</li></ul><table><tr><td>A</td><td>B</td></tr></table>"
    assert html_to_text(html) == "- un\n- deux\nA\tB"


def test_blockquote_lines_are_prefixed_for_quote_stripping():
    html = "<p>mot</p><blockquote>cité<br>encore</blockquote><p>fin</p>"
    assert html_to_text(html) == "mot\n> cité\n> encore\nfin"


def test_unbalanced_tags_do_not_leak_quote_depth():
    html = "<blockquote><div>cité</blockquote><p>après</p>"
    assert html_to_text(html).splitlines()[-1] == "après"


def test_preformatted_text_keeps_its_lines():
    assert html_to_text("<pre>a\n  b</pre>") == "a\n  b"


def test_arabic_and_emoji_survive():
    assert html_to_text('<div dir="rtl">المبلغ لم يصل 😡</div>') == "المبلغ لم يصل 😡"
