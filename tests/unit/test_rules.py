from uuid import uuid4

import pytest

from domain.agencies.rules import (
    ACTION_SCOPES,
    PERMISSIONS,
    Action,
    Principal,
    Role,
    can_assign_role,
    role_allows,
    scopes_allow,
    slugify,
)
from domain.brands.rules import CampaignStatus, can_move_campaign, normalize_hashtag
from domain.core.security import AccessTokens, OpaqueToken, Passwords, hash_secret


def test_every_role_has_an_entry_and_owner_admin_can_do_everything():
    assert set(PERMISSIONS) == set(Role)
    assert PERMISSIONS[Role.OWNER] == frozenset(Action)
    # Admins run the agency but do not commit its money: buying, changing or cancelling the plan is the owners'.
    assert PERMISSIONS[Role.ADMIN] == frozenset(Action) - {Action.BILLING_MANAGE}
    assert Action.BILLING_READ in PERMISSIONS[Role.ADMIN]


def test_roles_are_ordered_by_power():
    order = [Role.OWNER, Role.ADMIN, Role.MANAGER, Role.EDITOR, Role.ANALYST]
    for stronger, weaker in zip(order, order[1:]):
        assert PERMISSIONS[weaker] <= PERMISSIONS[stronger]


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (Role.ANALYST, Action.BRANDS_READ, True),
        (Role.ANALYST, Action.CAMPAIGNS_WRITE, False),
        (Role.EDITOR, Action.CAMPAIGNS_WRITE, True),
        (Role.EDITOR, Action.BRANDS_WRITE, False),
        (Role.MANAGER, Action.BRANDS_WRITE, True),
        (Role.MANAGER, Action.MEMBERS_MANAGE, False),
        (Role.MANAGER, Action.API_KEYS_MANAGE, False),
        (Role.ADMIN, Action.API_KEYS_MANAGE, True),
    ],
)
def test_role_table(role, action, allowed):
    assert role_allows(role, action) is allowed


def test_scopes_write_implies_read_and_keys_never_manage_keys():
    assert scopes_allow(frozenset({"brands:write"}), Action.BRANDS_READ)
    assert scopes_allow(frozenset({"brands:write"}), Action.BRANDS_WRITE)
    assert not scopes_allow(frozenset({"brands:read"}), Action.BRANDS_WRITE)
    assert not scopes_allow(frozenset({"brands:write"}), Action.CAMPAIGNS_READ)
    everything = frozenset(s for s in ACTION_SCOPES.values() if s)
    assert not scopes_allow(everything, Action.API_KEYS_MANAGE)


def test_only_owners_touch_the_owner_role():
    assert can_assign_role(Role.OWNER, Role.EDITOR, Role.OWNER)
    assert not can_assign_role(Role.ADMIN, Role.EDITOR, Role.OWNER)
    assert not can_assign_role(Role.ADMIN, Role.OWNER, Role.ADMIN)
    assert can_assign_role(Role.ADMIN, Role.EDITOR, Role.MANAGER)
    assert not can_assign_role(Role.MANAGER, Role.EDITOR, Role.ANALYST)


def test_principal_brand_limits():
    allowed = uuid4()
    limited = Principal(agency_id=uuid4(), user_id=uuid4(), role=Role.EDITOR, brand_ids=frozenset({allowed}))
    assert limited.sees_brand(allowed)
    assert not limited.sees_brand(uuid4())
    assert Principal(agency_id=uuid4(), user_id=uuid4(), role=Role.EDITOR).sees_brand(uuid4())


def test_a_principal_without_role_or_key_can_do_nothing():
    assert not any(Principal(agency_id=uuid4()).can(a) for a in Action)


def test_slugify():
    assert slugify("Panadería Sol") == "panaderia-sol"
    assert slugify("  ¡¡¡ ") == "item"
    assert len(slugify("x" * 300)) <= 60


def test_campaign_transitions():
    assert can_move_campaign(CampaignStatus.DRAFT, CampaignStatus.ACTIVE)
    assert can_move_campaign(CampaignStatus.ACTIVE, CampaignStatus.ACTIVE)
    assert not can_move_campaign(CampaignStatus.COMPLETED, CampaignStatus.ACTIVE)
    assert not can_move_campaign(CampaignStatus.CANCELLED, CampaignStatus.DRAFT)
    assert not can_move_campaign(CampaignStatus.DRAFT, CampaignStatus.COMPLETED)


def test_hashtags_are_normalised():
    assert normalize_hashtag("roscon") == "#roscon"
    assert normalize_hashtag("##roscon ") == "#roscon"


def test_opaque_tokens_round_trip_and_reject_garbage():
    agency = uuid4()
    token = OpaqueToken.new("chk", agency)
    parsed = OpaqueToken.parse(token.value, "chk")
    assert parsed == token and parsed.hashed == hash_secret(token.value)
    assert OpaqueToken.parse(token.value, "crt") is None
    assert OpaqueToken.parse("chk_nothex_" + "a" * 40, "chk") is None
    assert OpaqueToken.parse("chk_" + agency.hex + "_short", "chk") is None
    assert OpaqueToken.derived("chk", agency, "k", "demo") == OpaqueToken.derived("chk", agency, "k", "demo")
    assert OpaqueToken.derived("chk", agency, "k", "demo") != OpaqueToken.derived("chk", agency, "k2", "demo")


def test_access_tokens_verify_and_reject_tampering():
    tokens = AccessTokens("s" * 32, 60)
    user, agency, session = uuid4(), uuid4(), uuid4()
    token, _ = tokens.issue(user_id=user, agency_id=agency, session_id=session)
    claims = tokens.verify(token)
    assert claims is not None and claims.user_id == user and claims.agency_id == agency
    assert AccessTokens("o" * 32, 60).verify(token) is None
    assert tokens.verify(token[:-2] + "xx") is None
    assert AccessTokens("s" * 32, -10).verify(AccessTokens("s" * 32, -10).issue(
        user_id=user, agency_id=agency, session_id=session)[0]) is None


def test_passwords():
    passwords = Passwords(time_cost=1, memory_kib=1024)
    hashed = passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "wrong")
    assert not passwords.verify(None, "anything")


def test_verified_access_tokens_are_cached_but_expiry_still_applies():
    tokens = AccessTokens("s" * 32, 60)
    user, agency, session = uuid4(), uuid4(), uuid4()
    token, _ = tokens.issue(user_id=user, agency_id=agency, session_id=session)
    first = tokens.verify(token)
    assert tokens.verify(token) is first  # served from the cache
    from dataclasses import replace
    from datetime import timedelta

    tokens._verified[token] = replace(first, expires_at=first.expires_at - timedelta(seconds=120))
    assert tokens.verify(token) is None and token not in tokens._verified
    tokens.cache_size = 1
    other, _ = tokens.issue(user_id=uuid4(), agency_id=agency, session_id=session)
    tokens.verify(token)
    tokens.verify(other)
    assert len(tokens._verified) == 1
