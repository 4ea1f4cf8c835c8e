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
