"""The reply loop's Block Kit survives slack_sdk's models unchanged: a key slack_sdk does not
know (a misspelt `dispatch_action_config`, say) would be dropped on the round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.domain.length import check_length
from bot.render import Renderer, default_templates_dir
from bot.slack.approvals import approval_blocks
from bot.slack.modals import approve_edit_modal, draft_modal
from db.models import CaseRow, DraftRow, MentionRow
from db.store import CaseRecord

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def record() -> CaseRecord:
    mention = MentionRow(id=1, source="x", source_name="brand-x", external_id="1",
                         url="https://x.example/s/1", author_handle="@ann",
                         text="Is it down? <!channel>", published_at=NOW, received_at=NOW)
    case = CaseRow(id=7, mention_id=1, source="x", source_name="brand-x", state="claimed",
                   assignee="U0AGENT1", published_at=NOW, created_at=NOW, updated_at=NOW)
    return CaseRecord(case=case, mention=mention)


def round_trips(view: dict[str, Any]) -> None:
    assert View(**view).to_dict() == view


def draft(**fields: Any) -> DraftRow:
    return DraftRow(id=3, case_id=7, author="U0AGENT1", template="thanks",
                    text="Thanks Ann!", created_at=NOW, **fields)


@pytest.mark.parametrize("text", ["Thanks Ann!", "y" * 300])
def test_draft_modal_with_live_inputs_round_trips(text: str) -> None:
    templates = Renderer(default_templates_dir()).reply_templates("x")
    selected = next(t for t in templates if t.name == "apology_outage")
    view = draft_modal(record(), templates, selected, values={"eta": "soon"}, preview=text,
                       length=check_length("x", text))
    round_trips(view)
    inputs = [b for b in view["blocks"] if b["type"] == "input" and b["block_id"] != "template"]
    assert inputs and all(b["dispatch_action"] for b in inputs)
    typed = [b["element"] for b in inputs if b["element"]["type"] == "plain_text_input"]
    assert all(e["dispatch_action_config"] == {"trigger_actions_on": ["on_character_entered"]}
               for e in typed)
    assert ("Too long to send" in str(view["blocks"])) is (len(text) > 280)


def test_edit_and_approve_modal_round_trips() -> None:
    view = approve_edit_modal(7, 3, "Thanks Ann!", check_length("x", "Thanks Ann!"),
                              agent="U0AGENT1")
    round_trips(view)
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["element"]["initial_value"] == "Thanks Ann!"
    assert field["element"]["multiline"] is True


@pytest.mark.parametrize("fields", [
    {},
    {"status": "approved", "decided_by": "U0LEAD1", "edited": True,
     "original_text": "Thanks Ann"},
    {"status": "rejected", "decided_by": "U0LEAD1", "reason": "<!here> tone"},
    {"status": "superseded"},
])
def test_approval_request_round_trips(fields: dict[str, Any]) -> None:
    blocks, _ = approval_blocks(record(), draft(**fields), "11/280 weighted characters")
    assert [Block.parse(b).to_dict() for b in blocks] == blocks  # type: ignore[union-attr]
    assert "<!channel>" not in str(blocks) and "<!here>" not in str(blocks)
