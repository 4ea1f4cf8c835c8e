"""The content rules, without a database: each network's limits as the adapters declare them."""

from __future__ import annotations

import pytest

from domain.content.rules import (
    MediaFacts,
    VariantDraft,
    content_hash,
    diff,
    media_issues,
    post_status,
    same_copy_warnings,
    variant_issues,
)
from domain.content.service import adapt_copy
from domain.networks.adapters.base import Network
from domain.networks.rules import x_weighted_length

JPEG = MediaFacts("image", "image/jpeg", 300_000, 1080, 1350)
VIDEO = MediaFacts("video", "video/mp4", 20_000_000, 1080, 1920, duration_ms=30_000)


def rules_of(draft):
    return [i.rule for i in variant_issues(draft)]


@pytest.mark.parametrize(("statuses", "expected"), [
    ([], "draft"),
    (["draft", "scheduled"], "draft"),
    (["approved", "scheduled"], "approved"),
    (["scheduled", "scheduled"], "scheduled"),
    (["published", "scheduled"], "scheduled"),
    (["published", "publishing"], "publishing"),
    (["published", "failed"], "failed"),
    (["published", "published"], "published"),
    (["in_review", "approved"], "in_review"),
])
def test_post_status_follows_its_variants(statuses, expected):
    assert post_status(statuses) == expected


def test_x_text_limit_counts_as_x_does():
    assert rules_of(VariantDraft(Network.X, "a" * 280)) == []
    assert rules_of(VariantDraft(Network.X, "a" * 281)) == ["text_too_long"]
    url_heavy = "https://example.com/" + "x" * 400
    assert x_weighted_length(url_heavy) == 23 and rules_of(VariantDraft(Network.X, url_heavy)) == []


def test_thread_parts_are_each_checked():
    issues = variant_issues(VariantDraft(Network.X, "one", {"thread": ["two", "", "x" * 281]}))
    assert [(i.rule, i.field) for i in issues] == [("thread_part_empty", "options.thread[1]"),
                                                   ("text_too_long", "options.thread[2]")]
    assert rules_of(VariantDraft(Network.X, "one", {"thread": ["p"] * 24})) == []
    assert rules_of(VariantDraft(Network.X, "one", {"thread": ["p"] * 25})) == ["thread_too_long"]


def test_instagram_media_rules():
    assert rules_of(VariantDraft(Network.INSTAGRAM, "hola", {}, [JPEG])) == []
    assert rules_of(VariantDraft(Network.INSTAGRAM, "hola")) == ["media_required"]
    assert rules_of(VariantDraft(Network.INSTAGRAM, "hola", {"placement": "reel"}, [JPEG])) == ["reel_needs_one_video"]
    assert rules_of(VariantDraft(Network.INSTAGRAM, "hola", {"placement": "reel"}, [VIDEO])) == []
    assert rules_of(VariantDraft(Network.INSTAGRAM, "hola", {"placement": "story"}, [JPEG, JPEG])) == [
        "story_needs_one_item"]
    assert rules_of(VariantDraft(Network.INSTAGRAM, "hola", {}, [JPEG] * 11)) == ["too_many_images",
                                                                               "too_many_media"]
    assert rules_of(VariantDraft(Network.INSTAGRAM, "@a " * 21, {}, [JPEG])) == ["too_many_mentions"]


def test_media_mix_size_duration_and_ratio():
    assert [i.rule for i in media_issues(Network.X, [JPEG, VIDEO])] == ["mixed_media"]
    assert [i.rule for i in media_issues(Network.X, [MediaFacts("image", "image/jpeg", 6 * 2**20, 100, 100)])] == [
        "image_too_large"]
    long_video = MediaFacts("video", "video/mp4", 1_000, 1280, 720, duration_ms=141_000)
    assert [i.rule for i in media_issues(Network.X, [long_video])] == ["video_too_long"]
    short = MediaFacts("video", "video/mp4", 1_000, 1080, 1920, duration_ms=1_000)
    assert [i.rule for i in media_issues(Network.INSTAGRAM, [short], placement="reel")] == ["video_too_short"]
    banner = MediaFacts("image", "image/jpeg", 1_000, 4000, 1000)
    issue = media_issues(Network.X, [banner])[0]
    assert issue.rule == "aspect_ratio" and "4.00:1" in issue.message
    assert [i.rule for i in media_issues(Network.YOUTUBE, [JPEG])] == ["images_not_supported", "media_required"][:1]
    alt = MediaFacts("image", "image/jpeg", 1_000, 1000, 1500, alt_text="a" * 501)
    assert [i.rule for i in media_issues(Network.PINTEREST, [alt])] == ["alt_text_too_long"]


def test_options_are_typed_and_required_where_the_network_says():
    assert rules_of(VariantDraft(Network.TIKTOK, "hola", {"privacy": "SELF_ONLY"}, [VIDEO])) == []
    assert rules_of(VariantDraft(Network.TIKTOK, "hola", {"privacy": "FRIENDS"}, [VIDEO])) == ["option_invalid"]
    assert rules_of(VariantDraft(Network.TIKTOK, "hola", {"privacy": "SELF_ONLY", "disable_duet": "yes"}, [VIDEO])) == [
        "option_invalid"]
    assert rules_of(VariantDraft(Network.YOUTUBE, "d", {"title": "<b>", "privacy": "public"}, [VIDEO])) == [
        "option_invalid"]
    assert rules_of(VariantDraft(Network.PINTEREST, "d", {"board_id": "1", "link": "not a url"}, [JPEG])) == [
        "option_invalid"]
    assert rules_of(VariantDraft(Network.X, "d", {"first_comment": "hi"})) == ["unknown_option"]


def test_tiktok_photo_posts_use_the_description_limit():
    photo = MediaFacts("image", "image/jpeg", 1_000, 1080, 1920)
    assert rules_of(VariantDraft(Network.TIKTOK, "a" * 3_000, {"privacy": "SELF_ONLY"}, [photo])) == []
    assert rules_of(VariantDraft(Network.TIKTOK, "a" * 3_000, {"privacy": "SELF_ONLY"}, [VIDEO])) == ["text_too_long"]


def test_same_copy_warnings_ignore_case_and_spacing():
    found = same_copy_warnings([("a", "Hola  Mundo"), ("b", "hola mundo"), ("c", "otra cosa"), ("d", "")])
    assert set(found) == {"a", "b"} and found["a"].severity.value == "warning"


def test_hash_is_stable_and_diff_names_paths():
    assert content_hash({"b": 1, "a": [1, 2]}) == content_hash({"a": [1, 2], "b": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    changes = diff({"variants": [{"key": "k", "text": "a"}]}, {"variants": [{"key": "k", "text": "b"}]})
    assert changes == [{"path": "variants[k].text", "before": "a", "after": "b"}]


@pytest.mark.parametrize("network", list(Network))
def test_adapted_copy_always_fits(network):
    source = "palabra " * 9_000 + "#uno #dos #tres #cuatro"  # longer than any network takes
    text, adaptations = adapt_copy(source, network, ["#roscon"])
    assert not [i for i in variant_issues(VariantDraft(network, text)) if i.rule == "text_too_long"]
    assert any("shortened" in a for a in adaptations) and text.startswith("palabra palabra")
