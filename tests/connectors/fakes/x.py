"""A local X API v2: mentions timeline, recent search and post creation, shaped like the docs."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from tests.connectors.fakes._social_base import FakeServer, json_response

BRAND_ID = "2244994945"
BRAND_HANDLE = "AcmeCare"
NOT_ENGAGED = (
    "Reply to this Tweet is not allowed because you have not been mentioned or otherwise "
    "engaged by the author of the Tweet you are replying to."
)


def user(user_id: str, username: str, *, followers: int = 10, verified: bool = False
         ) -> dict[str, Any]:
    return {
        "id": user_id,
        "name": username.title(),
        "username": username,
        "verified": verified,
        "public_metrics": {"followers_count": followers, "following_count": 1,
                           "tweet_count": 5, "listed_count": 0},
    }


def tweet(tweet_id: int, author_id: str, text: str, **fields: Any) -> dict[str, Any]:
    data = {
        "id": str(tweet_id),
        "text": text,
        "author_id": author_id,
        "created_at": "2026-11-22T08:15:00.000Z",
        "conversation_id": str(tweet_id),
        "lang": "en",
        "edit_history_tweet_ids": [str(tweet_id)],
        "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 1,
                           "quote_count": 0},
    }
    data.update(fields)
    return data


class FakeX(FakeServer):
    def __init__(self, *, bearer: str = "app-bearer", user_token: str = "user-token") -> None:
        super().__init__()
        self.bearer = bearer
        self.user_token = user_token
        self.users: dict[str, dict[str, Any]] = {BRAND_ID: user(BRAND_ID, BRAND_HANDLE)}
        self.mentions: list[dict[str, Any]] = []
        self.searchable: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.reply_forbidden: set[str] = set()
        self._ids = itertools.count(1_900_000_000_000_000_000)
        self.app.router.add_get("/2/users/{id}/mentions", self._mentions)
        self.app.router.add_get("/2/tweets/search/recent", self._search)
        self.app.router.add_post("/2/tweets", self._create)

    def add_mention(self, tweet_id: int, username: str, text: str, **fields: Any
                    ) -> dict[str, Any]:
        author_id = str(10_000 + sum(map(ord, username)))
        self.users.setdefault(author_id, user(author_id, username))
        data = tweet(tweet_id, author_id, text, **fields)
        self.mentions.append(data)
        return data

    def _authorised(self, request: web.Request, token: str) -> bool:
        return request.headers.get("Authorization") == f"Bearer {token}"

    async def _mentions(self, request: web.Request) -> web.Response:
        if not self._authorised(request, self.bearer):
            return json_response({"title": "Unauthorized", "type": "about:blank",
                                  "status": 401, "detail": "Unauthorized"}, 401)
        if request.match_info["id"] != BRAND_ID:
            return json_response({"errors": [{"detail": "Could not find user"}]}, 200)
        return self._timeline(request, self.mentions, "pagination_token")

    async def _search(self, request: web.Request) -> web.Response:
        if not self._authorised(request, self.bearer):
            return json_response({"title": "Unauthorized", "status": 401,
                                  "detail": "Unauthorized"}, 401)
        query = request.query.get("query", "")
        if query.startswith("conversation_id:"):
            conversation = query.split()[0].split(":", 1)[1]
            found = [t for t in self.posted if t["conversation_id"] == conversation]
            return self._timeline(request, found, "next_token")
        return self._timeline(request, self.searchable, "next_token")

    def _timeline(
        self, request: web.Request, tweets: list[dict[str, Any]], token_param: str
    ) -> web.Response:
        newest_first = sorted(tweets, key=lambda t: int(t["id"]), reverse=True)
        since = request.query.get("since_id")
        if since:
            newest_first = [t for t in newest_first if int(t["id"]) > int(since)]
        size = int(request.query.get("max_results", "10"))
        token = request.query.get(token_param)
        if token:  # like X's tokens, a position that later arrivals do not shift
            newest_first = [t for t in newest_first if int(t["id"]) < int(token[len("before-"):])]
        page = newest_first[:size]
        if not page:
            return json_response({"meta": {"result_count": 0}})
        meta: dict[str, Any] = {
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
            "result_count": len(page),
        }
        if size < len(newest_first):
            meta["next_token"] = f"before-{page[-1]['id']}"
        authors = {t.get("author_id") for t in page}
        users = [u for uid, u in self.users.items() if uid in authors]
        return json_response({"data": page, "includes": {"users": users}, "meta": meta})

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorised(request, self.user_token):
            return json_response({"title": "Forbidden", "status": 403, "type": "about:blank",
                                  "detail": "You are not permitted to perform this action."},
                                 403)
        body = await request.json()
        parent = body["reply"]["in_reply_to_tweet_id"]
        if parent in self.reply_forbidden:
            return json_response({"title": "Forbidden", "status": 403, "type": "about:blank",
                                  "detail": NOT_ENGAGED}, 403)
        parent_tweet = next((t for t in self.mentions if t["id"] == parent), None)
        new_id = str(next(self._ids))
        self.posted.append({
            "id": new_id,
            "text": body["text"],
            "author_id": BRAND_ID,
            "conversation_id": parent_tweet["conversation_id"] if parent_tweet else parent,
            "referenced_tweets": [{"type": "replied_to", "id": parent}],
        })
        return json_response({"data": {"id": new_id, "text": body["text"],
                                        "edit_history_tweet_ids": [new_id]}}, 201)
