"""The app's routes, read from the app itself, so a new route cannot escape these tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from litestar.routes import HTTPRoute


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str  # with {param} placeholders
    opt: dict[str, Any]

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def url(self, ids: dict[str, str]) -> str:
        return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], self.path)


def routes(app) -> list[RouteCase]:
    cases = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if method in ("OPTIONS", "HEAD") or not handler.include_in_schema and not handler.opt.get("bench"):
                continue
            path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
            cases.append(RouteCase(method, path, dict(handler.opt)))
    return sorted(cases, key=lambda c: (c.path, c.method))


def api_routes(app) -> list[RouteCase]:
    """Routes that need a credential."""
    return [c for c in routes(app) if not c.opt.get("public")]
