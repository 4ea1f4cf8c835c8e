"""Unclear outcomes and interrupted runs, per network, through the real adapters against the
network sandbox over loopback (Chorus on loopback too, for the media links):

- the publish call times out after the provider took the post (`timeout`, effect applied):
  the engine finds it on the account with that network's own list endpoint and records it,
  never sending it again; the call times out before the provider acted (not applied): the
  lookup finds nothing, and a new attempt sends it once more;
- a status poll about to create the post stamps the attempt first: a run that dies after the
  stamp leaves a lookup, not a second post;
- the steps after the post (thread parts, first comment) are recorded one by one: a failing
  part is reported without un-publishing the post, a re-run resumes without duplicating.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from domain.networks.adapters.base import Network
from tests.workers.test_publishing import _attempts, _due_post, _fault, _link, _publish_calls, _sandbox, _variants, _who
from tests.workers.test_publishing_media import (  # noqa: F401 - fixtures
    _external_id,
    _media,
    _posts,
    app_role_engine,
    chorus,
    pub_settings,
    sandbox,
)


def _publisher(tenant, pub_settings, app_role_engine, after_commit=None):
    from domain.core.db import session_factory
    from domain.publishing.service import Publisher, network_settings

    return Publisher(agency_id=uuid.UUID(tenant.agency_id), factory=session_factory(app_role_engine),
                     vault=pub_settings.vault(), networks=network_settings(pub_settings),
                     after_commit=after_commit if after_commit is not None else [])


async def _claim_one(tenant, app_role_engine):
    from domain.core.db import scoped_session, session_factory
    from domain.publishing.service import claim_due

    agency = uuid.UUID(tenant.agency_id)
    async with scoped_session(session_factory(app_role_engine), agency_id=agency) as session, session.begin():
        [claimed] = await claim_due(session, agency)
    return claimed


# network -> (account kind, variant fields beyond the text, media kind, fault seconds)
NETWORKS = {
    Network.X: (None, {}, None, 2),
    Network.FACEBOOK: ("page", {}, None, 2),
    Network.THREADS: (None, {}, None, 2),
    Network.LINKEDIN: ("organization", {}, None, 2),
    Network.INSTAGRAM: (None, {}, "image", 2),
    Network.PINTEREST: ("board", {"options": {}}, "image", 2),
    Network.YOUTUBE: (None, {"options": {"title": "Roscón", "privacy": "public"}}, "video", 7),  # the upload waits 6 s
    Network.TIKTOK: (None, {"options": {"privacy": "SELF_ONLY"}}, "video", 2),
}


async def _variant_for(tenant, owner_engine, pub_settings, sandbox, network: Network, who: str) -> tuple[dict, str]:
    kind, extra, media, seconds = NETWORKS[network]
    brand = await tenant.brand()
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], network, who, kind)
    words = f"Roscón {uuid.uuid4().hex[:8]}"
    variant = {"social_account_id": account, "text": words, **json.loads(json.dumps(extra))}
    if network is Network.PINTEREST:
        variant["options"]["board_id"] = await _external_id(owner_engine, account)
    if media:
        variant["media"] = [{"media_id": await _media(tenant, brand["id"], media)}]
    post = await _due_post(tenant, owner_engine, brand["id"], [variant])
    return post, words


async def _until_published(publisher, sandbox, variant_id, attempt_id) -> str:
    """Poll an accepted, processing attempt (moving the sandbox clock) until it settles."""
    for _ in range(5):
        outcome = await publisher.check_attempt(variant_id, attempt_id, unknown_grace=timedelta(0))
        if outcome not in ("processing", "retry_later", "waiting"):
            return outcome
        await _sandbox(sandbox, "POST", "/_sandbox/clock", json={"advance_seconds": 120})
    return outcome


@pytest.mark.parametrize("network", list(NETWORKS), ids=[n.value for n in NETWORKS])
async def test_a_post_taken_before_the_timeout_is_found_by_lookup_not_sent_again(
        network, tenant, owner_engine, pub_settings, sandbox, chorus, app_role_engine):
    who = _who(f"ra{network.value[:2]}")
    post, words = await _variant_for(tenant, owner_engine, pub_settings, sandbox, network, who)
    await _fault(sandbox, network=network.value, match="publish", kind="timeout", effect="applied", identity=who,
                 seconds=NETWORKS[network][3])
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    publisher = _publisher(tenant, pub_settings, app_role_engine)
    assert await publisher.publish_attempt(variant_id, attempt_id) == "unknown"
    assert await publisher.check_attempt(variant_id, attempt_id) == "waiting"  # the provider gets time to show it
    await _sandbox(sandbox, "POST", "/_sandbox/clock", json={"advance_seconds": 120})  # TikTok: processed by now
    assert await publisher.check_attempt(variant_id, attempt_id, unknown_grace=timedelta(0)) == "published"
    variant = (await _variants(owner_engine, post["id"]))[str(variant_id)]
    [on_network] = [p for p in await _posts(sandbox, network.value, who) if not p["deleted"]]
    assert variant["status"] == "published" and on_network["text"] == words
    assert variant["external_id"] == on_network["id"]
    [attempt] = await _attempts(owner_engine, str(variant_id))
    assert attempt["outcome"] == "published" and attempt["response"]["reconciled"] is True
    assert await _publish_calls(sandbox, network.value, who) == 1


@pytest.mark.parametrize("network", list(NETWORKS), ids=[n.value for n in NETWORKS])
async def test_a_post_the_provider_never_took_is_sent_once_more(network, tenant, owner_engine, pub_settings, sandbox,
                                                                chorus, app_role_engine):
    who = _who(f"rn{network.value[:2]}")
    post, words = await _variant_for(tenant, owner_engine, pub_settings, sandbox, network, who)
    await _fault(sandbox, network=network.value, match="publish", kind="timeout", effect="not_applied", identity=who,
                 seconds=NETWORKS[network][3])
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    publisher = _publisher(tenant, pub_settings, app_role_engine)
    assert await publisher.publish_attempt(variant_id, attempt_id) == "unknown"
    await _sandbox(sandbox, "POST", "/_sandbox/clock", json={"advance_seconds": 120})
    assert await publisher.check_attempt(variant_id, attempt_id, unknown_grace=timedelta(0)) == "abandoned"
    assert (await _variants(owner_engine, post["id"]))[str(variant_id)]["status"] == "scheduled"
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    outcome = await publisher.publish_attempt(variant_id, attempt_id)
    if outcome == "processing":
        outcome = await _until_published(publisher, sandbox, variant_id, attempt_id)
    assert outcome == "published"
    [on_network] = [p for p in await _posts(sandbox, network.value, who) if not p["deleted"]]
    assert on_network["text"] == words
    assert [a["outcome"] for a in await _attempts(owner_engine, str(variant_id))] == ["abandoned", "published"]
    assert await _publish_calls(sandbox, network.value, who) == 2  # the lost call and the new one


async def test_a_client_without_a_lookup_means_no_lookup():
    """Every network has one now; a client without `find_recent` makes the engine fail the
    attempt with outcome_unknown (asking a person) rather than guess."""
    from datetime import UTC, datetime

    from domain.publishing.sending import find_on_account

    assert await find_on_account(object(), None, "x", since=datetime.now(UTC)) is None  # type: ignore[arg-type]


# --- a poll that creates the post -------------------------------------------------------------


async def _x_video_processing(tenant, owner_engine, pub_settings, sandbox, app_role_engine, who):
    brand = await tenant.brand()
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    video = await _media(tenant, brand["id"], "video")
    words = f"Vídeo {uuid.uuid4().hex[:8]}"
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": account, "text": words,
                                                                 "media": [{"media_id": video}]}])
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    publisher = _publisher(tenant, pub_settings, app_role_engine)
    assert await publisher.publish_attempt(variant_id, attempt_id) == "processing"
    await _sandbox(sandbox, "POST", "/_sandbox/clock", json={"advance_seconds": 60})  # the video is processed
    return post, words, account, variant_id, attempt_id, publisher


async def _stamp_creating(owner_engine, attempt_id, minutes_ago: int) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "UPDATE publish_attempts SET response = response || jsonb_build_object('creating_at',"
            " (now() - make_interval(mins => :m))::text) WHERE id = :id"), {"id": str(attempt_id), "m": minutes_ago})


async def test_a_run_that_died_after_creating_from_the_poll_is_looked_up(tenant, owner_engine, pub_settings, sandbox,
                                                                         chorus, app_role_engine):
    """The worker stamped `creating_at`, X created the post, the worker died before recording it."""
    from domain.networks.adapters.base import AccountRef
    from domain.networks.adapters.x import XClient

    who = _who("rcx")
    post, words, account, variant_id, attempt_id, publisher = await _x_video_processing(
        tenant, owner_engine, pub_settings, sandbox, app_role_engine, who)
    [attempt] = await _attempts(owner_engine, str(variant_id))
    await _stamp_creating(owner_engine, attempt_id, 0)
    token = await publisher._token(uuid.UUID(account))
    sent = await XClient(sandbox, timeout=2).publish_status(
        AccountRef(await _external_id(owner_engine, account), token), attempt["response"]["pending_ref"])
    assert await publisher.check_attempt(variant_id, attempt_id) == "waiting"  # stamped recently (grace)
    assert await publisher.check_attempt(variant_id, attempt_id, unknown_grace=timedelta(0)) == "published"
    variant = (await _variants(owner_engine, post["id"]))[str(variant_id)]
    assert variant["external_id"] == sent.external_id
    assert await _publish_calls(sandbox, "x", who) == 1


async def test_a_run_that_died_before_creating_from_the_poll_creates_it_once(tenant, owner_engine, pub_settings,
                                                                             sandbox, chorus, app_role_engine):
    who = _who("rcn")
    post, words, account, variant_id, attempt_id, publisher = await _x_video_processing(
        tenant, owner_engine, pub_settings, sandbox, app_role_engine, who)
    await _stamp_creating(owner_engine, attempt_id, 5)  # stamped, then died before the call
    grace = timedelta(0)
    assert await publisher.check_attempt(variant_id, attempt_id, unknown_grace=grace) == "processing"  # not there
    assert await publisher.check_attempt(variant_id, attempt_id, unknown_grace=grace) == "published"
    assert [p["text"] for p in await _posts(sandbox, "x", who)] == [words]
    assert await _publish_calls(sandbox, "x", who) == 1


# --- after the post ---------------------------------------------------------------------------


async def _x_thread(tenant, owner_engine, pub_settings, sandbox, who, parts):
    brand = await tenant.brand()
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    words = f"Hilo {uuid.uuid4().hex[:8]}"
    await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": account, "text": words,
                                                         "options": {"thread": parts}}])
    return words


async def test_a_failing_thread_part_is_reported_and_the_post_stays_published(
        tenant, owner_engine, pub_settings, sandbox, chorus, app_role_engine):
    who = _who("rtf")
    await _x_thread(tenant, owner_engine, pub_settings, sandbox, who, ["Dos", "Tres"])
    await _fault(sandbox, network="x", match="reply", kind="status", status=403, identity=who,
                 body={"title": "Forbidden", "detail": "You attempted to reply to a Tweet that is deleted.",
                       "type": "about:blank", "status": 403})
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    publisher = _publisher(tenant, pub_settings, app_role_engine)
    assert await publisher.publish_attempt(variant_id, attempt_id) == "published"
    [attempt] = await _attempts(owner_engine, str(variant_id))
    assert attempt["outcome"] == "published"
    [part] = attempt["response"]["thread_parts"]  # the third part does not follow a missing second one
    assert "deleted" in part["error"] and "thread part 2 failed" in attempt["message"]
    r = await tenant.req("GET", f"/v1/posts/{(await _post_of(owner_engine, variant_id))}/variants/{variant_id}/"
                                "attempts")
    assert r.status_code == 200, r.text
    assert "thread part 2 failed" in r.json()["items"][0]["message"]
    assert len(await _posts(sandbox, "x", who)) == 1


async def _post_of(owner_engine, variant_id) -> str:
    async with owner_engine.connect() as conn:
        return str(await conn.scalar(text("SELECT post_id FROM post_variants WHERE id = :id"), {"id": str(variant_id)}))


async def _set(owner_engine, table: str, row_id, column: str, patch: dict) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"UPDATE {table} SET {column} = {column} || CAST(:p AS jsonb) WHERE id = :id"),
                           {"id": str(row_id), "p": json.dumps(patch)})


async def test_a_rerun_posts_the_thread_the_dead_run_did_not(tenant, owner_engine, pub_settings, sandbox, chorus,
                                                             app_role_engine):
    """The job died right after recording the post: its re-run (dramatiq redelivers it) posts
    the parts once the job ends; a further re-run posts nothing."""
    who = _who("rtr")
    words = await _x_thread(tenant, owner_engine, pub_settings, sandbox, who, [])
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    assert await _publisher(tenant, pub_settings, app_role_engine).publish_attempt(variant_id, attempt_id) == "published"
    await _set(owner_engine, "post_variants", variant_id, "options", {"thread": ["Dos", "Tres"]})  # not yet posted
    for _ in range(2):
        after: list = []
        assert await _publisher(tenant, pub_settings, app_role_engine, after).publish_attempt(
            variant_id, attempt_id) == "skipped"
        for task in after:
            await task()
    main, second, third = await _posts(sandbox, "x", who)
    assert (main["text"], second["text"], third["text"]) == (words, "Dos", "Tres")
    assert (second["reply_to"], third["reply_to"]) == (main["id"], second["id"])
    [attempt] = await _attempts(owner_engine, str(variant_id))
    assert attempt["response"]["thread_parts"] == [{"id": second["id"]}, {"id": third["id"]}]


async def _dead_run_stamped_part_two(tenant, owner_engine, pub_settings, sandbox, app_role_engine, who, *,
                                    went_out: bool):
    """A published X post whose job died after stamping thread part 2 (of ["Dos", "Tres"]);
    `went_out`: X took that part before the worker died."""
    from domain.networks.adapters.base import AccountRef, PublishRequest
    from domain.networks.adapters.x import XClient

    words = await _x_thread(tenant, owner_engine, pub_settings, sandbox, who, [])
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    publisher = _publisher(tenant, pub_settings, app_role_engine)
    assert await publisher.publish_attempt(variant_id, attempt_id) == "published"
    variant = next(iter((await _variants(owner_engine, await _post_of(owner_engine, variant_id))).values()))
    await _set(owner_engine, "post_variants", variant_id, "options", {"thread": ["Dos", "Tres"]})
    await _set(owner_engine, "publish_attempts", attempt_id, "response",
               {"thread_sending": {"index": 0, "at": datetime.now(UTC).isoformat()}})
    if went_out:
        token = await publisher._token(variant["social_account_id"])
        await XClient(sandbox, timeout=2).publish(AccountRef(await _external_id(owner_engine, str(
            variant["social_account_id"])), token), PublishRequest(text="Dos", reply_to=variant["external_id"]))
    after: list = []
    assert await _publisher(tenant, pub_settings, app_role_engine, after).publish_attempt(
        variant_id, attempt_id) == "skipped"
    for task in after:
        await task()
    [attempt] = await _attempts(owner_engine, str(variant_id))
    return words, attempt


async def test_a_part_stamped_by_a_dead_run_is_found_under_the_post_and_the_thread_goes_on(
        tenant, owner_engine, pub_settings, sandbox, chorus, app_role_engine):
    who = _who("rts")
    words, attempt = await _dead_run_stamped_part_two(tenant, owner_engine, pub_settings, sandbox, app_role_engine,
                                                      who, went_out=True)
    main, second, third = await _posts(sandbox, "x", who)
    assert (main["text"], second["text"], third["text"]) == (words, "Dos", "Tres")
    assert third["reply_to"] == second["id"]
    assert attempt["response"]["thread_parts"] == [{"id": second["id"]}, {"id": third["id"]}]
    assert "thread_sending" not in attempt["response"]


async def test_a_part_stamped_by_a_dead_run_and_not_found_is_never_sent_again(
        tenant, owner_engine, pub_settings, sandbox, chorus, app_role_engine):
    """Not under the post either: it may yet appear, so it is reported, not sent again (nor the
    parts after it, which would be out of order)."""
    who = _who("rtn")
    words, attempt = await _dead_run_stamped_part_two(tenant, owner_engine, pub_settings, sandbox, app_role_engine,
                                                      who, went_out=False)
    assert [p["text"] for p in await _posts(sandbox, "x", who)] == [words]
    assert "not found under the post" in attempt["response"]["thread_parts"][0]["error"]
    assert "thread_sending" not in attempt["response"] and "thread part 2 failed" in attempt["message"]


async def test_a_thread_part_whose_answer_was_lost_is_found_and_the_thread_goes_on(
        tenant, owner_engine, pub_settings, sandbox, chorus, app_role_engine):
    who = _who("rtl")
    words = await _x_thread(tenant, owner_engine, pub_settings, sandbox, who, ["Dos", "Tres"])
    await _fault(sandbox, network="x", match="reply", kind="timeout", effect="applied", identity=who, seconds=2)
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    assert await _publisher(tenant, pub_settings, app_role_engine).publish_attempt(variant_id, attempt_id) == "published"
    main, second, third = await _posts(sandbox, "x", who)
    assert (second["text"], third["text"], third["reply_to"]) == ("Dos", "Tres", second["id"])
    [attempt] = await _attempts(owner_engine, str(variant_id))
    assert attempt["response"]["thread_parts"] == [{"id": second["id"]}, {"id": third["id"]}]


async def test_a_first_comment_whose_answer_was_lost_is_found_not_posted_twice(
        tenant, owner_engine, pub_settings, sandbox, chorus, app_role_engine):
    brand = await tenant.brand()
    who = _who("rfc")
    account = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.FACEBOOK, who, "page")
    await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": account, "text": "Recién hecho",
                                                         "options": {"first_comment": "Pedidos en la web"}}])
    await _fault(sandbox, network="facebook", match="reply", kind="timeout", effect="applied", identity=who,
                 seconds=2)
    variant_id, attempt_id = await _claim_one(tenant, app_role_engine)
    publisher = _publisher(tenant, pub_settings, app_role_engine)
    assert await publisher.publish_attempt(variant_id, attempt_id) == "published"
    [attempt] = await _attempts(owner_engine, str(variant_id))
    assert attempt["response"]["first_comment_id"] and "first_comment_error" not in attempt["response"]
    after: list = []
    await _publisher(tenant, pub_settings, app_role_engine, after).publish_attempt(variant_id, attempt_id)
    for task in after:
        await task()
    calls = await _sandbox(sandbox, "GET", "/_sandbox/calls", params={"network": "facebook", "identity": who,
                                                                      "kind": "reply"})
    assert calls["count"] == 1
