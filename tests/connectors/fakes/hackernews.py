"""A local Algolia HN Search API: `GET /api/v1/search_by_date`, newest first, paged.

Understands what the connector sends: `query` (a case-insensitive word match here), `tags`
`(story,comment)`, `numericFilters` on `created_at_i` joined by commas (AND), `hitsPerPage`
and `page`.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.connectors.fakes._social_base import FakeServer, json_response

DATA = Path(__file__).resolve().parents[2] / "data" / "hackernews"
_FILTER = re.compile(r"^created_at_i(>=|<=|>|<|=)(\d+)$")
_OPS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq,
}


def load(name: str = "search_by_date.json") -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def hit(object_id: str, created: int, title: str) -> dict[str, Any]:
    return {"_tags": ["story", "author_someone", f"story_{object_id}"], "author": "someone",
            "created_at_i": created, "objectID": object_id, "points": 1,
            "story_id": int(object_id), "title": title, "num_comments": 0}


class FakeAlgolia(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.hits: list[dict[str, Any]] = [
            h for h in load()["hits"] if isinstance(h.get("created_at_i"), int)]
        self.app.router.add_get("/api/v1/search_by_date", self._search)

    async def _search(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").lower()
        tags = request.query.get("tags", "").strip("()").split(",")
        checks = []
        for part in filter(None, request.query.get("numericFilters", "").split(",")):
            match = _FILTER.match(part.strip())
            if not match:
                return json_response({"message": f"invalid numericFilters {part}",
                                      "status": 400}, status=400)
            checks.append((_OPS[match.group(1)], int(match.group(2))))
        per_page = int(request.query.get("hitsPerPage", "20"))
        page = int(request.query.get("page", "0"))
        found = [
            h for h in self.hits
            if query in " ".join(str(h.get(k) or "") for k in
                                 ("title", "comment_text", "story_text")).lower()
            and any(tag in h["_tags"] for tag in tags)
            and all(check(h["created_at_i"], value) for check, value in checks)
        ]
        found.sort(key=lambda h: h["created_at_i"], reverse=True)
        pages = math.ceil(len(found) / per_page) if found else 0
        return json_response({
            "hits": found[page * per_page:(page + 1) * per_page],
            "nbHits": len(found), "page": page, "nbPages": pages, "hitsPerPage": per_page,
            "exhaustiveNbHits": True, "query": request.query.get("query", ""),
            "params": request.query_string, "processingTimeMS": 1,
        })
