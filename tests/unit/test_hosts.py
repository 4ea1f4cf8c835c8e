from domain.networks.hosts import resolve


def test_real_hosts_unless_a_sandbox_is_configured():
    assert resolve("https://api.x.com/2/oauth2/token", "x", None) == "https://api.x.com/2/oauth2/token"
    assert resolve("https://api.x.com/2/oauth2/token", "x", "http://127.0.0.1:9/sandbox/") == (
        "http://127.0.0.1:9/sandbox/x/2/oauth2/token")
    assert resolve("https://www.pinterest.com/oauth/?a=1", "pinterest", "http://sb") == "http://sb/pinterest/oauth/?a=1"
