import pytest

from domain.networks.catalog import CATALOG
from domain.networks.adapters.base import Network, TextCounting
from domain.networks.rules import hashtags, mentions, text_length, x_weighted_length


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("", 0),
        ("Roscón de Reyes", 15),  # Latin with accents weighs 1
        ("https://panaderiasol.example/roscon?utm=x", 23),
        ("Pide tu roscón: https://sol.es/r", 16 + 23),
        ("😀", 2),
        ("👍🏽", 2),  # skin tone modifier is part of the emoji
        ("👨‍👩‍👧", 2),  # a ZWJ family is one emoji
        ("🇪🇸", 2),
        ("日本", 4),  # CJK weighs 2
        ("“quotes”", 8),  # U+201C/U+201D are in a light range
    ],
)
def test_x_weighted_length(text, expected):
    assert x_weighted_length(text) == expected


def test_x_counts_nfc_normalised():
    decomposed = "Rosco\u0301n"  # o + combining acute
    assert x_weighted_length(decomposed) == x_weighted_length("Roscón") == 6


def test_other_countings():
    assert text_length("😀a", TextCounting.UTF16_UNITS) == 3
    assert text_length("😀a", TextCounting.UTF8_BYTES) == 5
    assert text_length("😀a", TextCounting.CHARACTERS) == 2


def test_hashtags_and_mentions():
    text = "Nuevo #roscon con @panaderiasol y @luis.sol #navidad #2026 mail@x.com c#sharp"
    assert hashtags(text) == ["#roscon", "#navidad", "#2026"]
    assert mentions(text) == ["@panaderiasol", "@luis.sol"]


def test_catalog_has_every_network_with_its_facts():
    assert set(CATALOG) == set(Network)
    x = CATALOG[Network.X]
    assert x.limits.text_max == 280 and x.limits.text_counting is TextCounting.X_WEIGHTED
    assert x.oauth.pkce == "required" and x.oauth.refresh_rotates
    ig = CATALOG[Network.INSTAGRAM]
    assert (ig.limits.text_max, ig.limits.hashtags_max, ig.limits.mentions_max) == (2200, 30, 20)
    assert ig.needs_public_media_url and ig.limits.media_required
    assert CATALOG[Network.TIKTOK].oauth.client_id_param == "client_key"
    assert dict(CATALOG[Network.YOUTUBE].oauth.extra_authorize_params) == {"access_type": "offline", "prompt": "consent"}
    assert CATALOG[Network.PINTEREST].account_kinds == ("board",)
    for spec in CATALOG.values():
        assert spec.oauth.authorize_url.startswith("https://") and spec.oauth.token_url.startswith("https://")
        assert spec.limits.text_max > 0 and spec.post_kinds
