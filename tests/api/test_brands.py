import asyncio

PROFILE = {
    "mission": "Pan de verdad", "vision": "La panadería del barrio", "history": "Desde 1962",
    "values": ["artesanía"], "voice": "warm, neighbourly, never corporate", "tone_guidelines": "tutea",
    "do_words": ["masa madre"], "dont_words": ["industrial"],
    "audiences": [{"name": "Vecinos", "age_range": "45-75", "interests": ["tradición"]}],
    "swot": {"strengths": ["receta"], "weaknesses": ["web"], "opportunities": ["roscón"], "threats": ["cadenas"]},
    "competitors": [{"name": "Horno San José", "handles": {"instagram": "@hornosj"}, "website": "https://horno.example"}],
    "hashtag_sets": [{"name": "Navidad", "hashtags": ["roscon", "#navidad", "#roscon"]}],
}


async def test_create_brand_with_full_profile(tenant):
    brand = await tenant.brand("Panadería Sol", profile=PROFILE, language="es-ES")
    assert brand["slug"] == "panaderia-sol" and brand["status"] == "active" and brand["version"] == 1
    profile = brand["profile"]
    assert profile["swot"]["opportunities"] == ["roscón"]
    assert profile["competitors"][0]["handles"] == {"instagram": "@hornosj"}
    # Hashtags are normalised and de-duplicated.
    assert profile["hashtag_sets"][0]["hashtags"] == ["#roscon", "#navidad"]
    r = await tenant.req("GET", f"/v1/brands/{brand['id']}")
    assert r.json() == brand


async def test_brand_time_zone_and_language_are_validated(tenant):
    for body, field in [
        ({"name": "X", "time_zone": "Europe/Atlantis", "language": "es"}, "time_zone"),
        ({"name": "X", "time_zone": "Europe/Madrid", "language": "not a language"}, "language"),
        ({"name": "", "time_zone": "Europe/Madrid", "language": "es"}, "name"),
    ]:
        r = await tenant.req("POST", "/v1/brands", json=body)
        assert r.status_code == 422, body
        assert r.json()["errors"][0]["field"] == field
    assert (await tenant.req("GET", "/v1/brands")).json()["items"] == []


async def test_slug_unique_per_agency_only(tenant, other_tenant):
    await tenant.brand("Same", slug="same")
    r = await tenant.req("POST", "/v1/brands", json={"name": "Same", "slug": "same", "time_zone": "UTC", "language": "en"})
    assert r.status_code == 409 and r.json()["type"].endswith("/slug-taken")
    assert (await other_tenant.brand("Same", slug="same"))["slug"] == "same"
    # A generated slug steps around the taken one.
    assert (await tenant.brand("Same"))["slug"] == "same-2"


async def test_profile_patch_replaces_only_given_parts(tenant):
    brand = await tenant.brand("Sol", profile=PROFILE)
    r = await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"profile": {"voice": "playful"}},
                         headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["profile"]["voice"] == "playful"
    assert updated["profile"]["mission"] == PROFILE["mission"]
    assert updated["version"] == 2 and r.headers["etag"] == '"2"'


async def test_if_match_conflict_is_412_and_changes_nothing(tenant):
    brand = await tenant.brand("Sol")
    first = await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"name": "Marta's edit"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    second = await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"name": "Luis's edit"}, headers={"If-Match": '"1"'})
    assert second.status_code == 412 and second.json()["type"].endswith("/precondition-failed")
    assert (await tenant.req("GET", f"/v1/brands/{brand['id']}")).json()["name"] == "Marta's edit"
    bad = await tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"name": "x"}, headers={"If-Match": "garbage"})
    assert bad.status_code == 412


async def test_concurrent_updates_with_same_etag_one_wins(tenant):
    brand = await tenant.brand("Race")
    results = await asyncio.gather(*[
        tenant.req("PATCH", f"/v1/brands/{brand['id']}", json={"name": f"edit {i}"}, headers={"If-Match": '"1"'})
        for i in range(5)
    ])
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1 and codes.count(412) == 4


async def test_archive_and_filter(tenant):
    keep = await tenant.brand("Keep")
    gone = await tenant.brand("Gone")
    r = await tenant.req("PATCH", f"/v1/brands/{gone['id']}", json={"status": "archived"})
    assert r.json()["status"] == "archived"
    active = (await tenant.req("GET", "/v1/brands", params={"status": "active"})).json()["items"]
    assert [b["id"] for b in active] == [keep["id"]]
    r = await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": gone["id"], "name": "Late", "objective": "sales", "start_date": "2027-01-01", "end_date": "2027-01-02"})
    assert r.status_code == 409 and r.json()["type"].endswith("/brand-archived")


async def test_cursor_pagination_walks_every_brand_once(tenant):
    names = [f"Brand {i:02d}" for i in range(23)]
    for name in reversed(names):
        await tenant.brand(name)
    seen, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = (await tenant.req("GET", "/v1/brands", params=params)).json()
        seen += [b["name"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    desc = (await tenant.req("GET", "/v1/brands", params={"limit": 3, "sort": "-name"})).json()
    assert [b["name"] for b in desc["items"]] == names[::-1][:3]
    # A cursor from one sort order does not fit another.
    r = await tenant.req("GET", "/v1/brands", params={"sort": "created_at", "cursor": desc["next_cursor"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
    assert (await tenant.req("GET", "/v1/brands", params={"cursor": "!!!"})).status_code == 422
    assert (await tenant.req("GET", "/v1/brands", params={"sort": "password"})).status_code == 422
    assert (await tenant.req("GET", "/v1/brands", params={"limit": 1000})).status_code in (400, 422)
    found = (await tenant.req("GET", "/v1/brands", params={"q": "brand 1"})).json()["items"]
    assert {b["name"] for b in found} == {f"Brand {i:02d}" for i in range(10, 20)}


async def test_like_wildcards_in_search_are_literal(tenant):
    await tenant.brand("100% Natural")
    await tenant.brand("Other")
    found = (await tenant.req("GET", "/v1/brands", params={"q": "%"})).json()["items"]
    assert [b["name"] for b in found] == ["100% Natural"]


async def test_renaming_to_a_taken_slug_is_409_and_changes_nothing(tenant):
    await tenant.brand("First", slug="first")
    second = await tenant.brand("Second", slug="second")
    r = await tenant.req("PATCH", f"/v1/brands/{second['id']}", json={"name": "Renamed", "slug": "first"})
    assert r.status_code == 409 and r.json()["type"].endswith("/slug-taken")
    assert r.json()["field"] == "slug"
    after = (await tenant.req("GET", f"/v1/brands/{second['id']}")).json()
    assert after["name"] == "Second" and after["slug"] == "second" and after["version"] == 1


async def test_agency_slug_clash_on_update_is_409(client, tenant):
    from tests.conftest import sign_up

    other = await sign_up(client)
    taken = (await other.req("GET", "/v1/agency")).json()["slug"]
    r = await tenant.req("PATCH", "/v1/agency", json={"slug": taken, "name": "Renamed"})
    assert r.status_code == 409 and r.json()["type"].endswith("/slug-taken")
    assert (await tenant.req("GET", "/v1/agency")).json()["name"] != "Renamed"
