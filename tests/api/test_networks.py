async def test_list_networks_is_public_and_complete(client):
    r = await client.get("/v1/networks")
    assert r.status_code == 200
    items = {n["id"]: n for n in r.json()["items"]}
    assert set(items) == {"x", "facebook", "instagram", "tiktok", "youtube", "linkedin", "threads", "pinterest"}
    x = items["x"]
    assert x["limits"]["text_max"] == 280 and x["limits"]["text_counting"] == "x_weighted"
    assert x["thread_parts"] is True and x["oauth"]["pkce"] == "required"
    assert items["instagram"]["limits"]["hashtags_max"] == 30
    assert items["pinterest"]["account_kinds"] == ["board"]
    # Nothing secret about the app's credentials is ever in the catalog.
    text = r.text.lower()
    assert "client_secret" not in text and "secret" not in text


async def test_get_one_network_and_unknown_is_404(client):
    r = await client.get("/v1/networks/tiktok")
    assert r.status_code == 200 and r.json()["limits"]["text_counting"] == "utf16_units"
    r = await client.get("/v1/networks/myspace")
    assert r.status_code == 404 and r.json()["type"].endswith("/not-found")


async def test_networks_list_the_variant_options_and_sizes_posts_are_checked_by(client):
    from domain.content.rules import OPTIONS
    from domain.networks.adapters.base import Network

    body = (await client.get("/v1/networks/tiktok")).json()
    options = {o["name"]: o for o in body["options"]}
    assert set(options) == set(OPTIONS[Network.TIKTOK])
    assert options["privacy"]["required"] is True and "SELF_ONLY" in options["privacy"]["choices"]
    assert {"kind": "video", "width": 1080, "height": 1920} in body["recommended_sizes"]
    youtube = (await client.get("/v1/networks/youtube")).json()
    assert {o["name"] for o in youtube["options"] if o["required"]} == {"title", "privacy"}
