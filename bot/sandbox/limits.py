"""Block Kit payload checks, so the emulator rejects what real Slack would reject.

Real Slack answers an oversize or malformed payload with `invalid_blocks` and a list of
`"<reason> [json-pointer:/blocks/0/text/text]"` strings; the bot must never find that out in
production first. The documented limits are checked here by walking the raw JSON (so every
problem carries a pointer), then `slack_sdk.models` parses each block as a second opinion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_TEXT_MAX = 40_000
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
BLOCK_ID_MAX = 255
ACTION_ID_MAX = 255
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
MARKDOWN_BLOCK_TEXT_MAX = 12_000
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
IMAGE_URL_MAX = 3000
IMAGE_ALT_TEXT_MAX = 2000
IMAGE_TITLE_MAX = 2000
INPUT_LABEL_MAX = 2000
INPUT_HINT_MAX = 2000
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
BUTTON_URL_MAX = 3000
PLACEHOLDER_MAX = 150
SELECT_OPTIONS_MAX = 100
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTION_DESCRIPTION_MAX = 75
OVERFLOW_OPTIONS_MAX = 5
CHOICE_OPTIONS_MAX = 10
TEXT_INPUT_LENGTH_MAX = 3000
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30
VIEW_TITLE_MAX = 24
VIEW_SUBMIT_MAX = 24
VIEW_CLOSE_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
EXTERNAL_ID_MAX = 255

class Surface(StrEnum):
    MESSAGE = "message"
    MODAL = "modal"
    HOME = "home"


_BLOCK_TYPES: dict[Surface, frozenset[str]] = {
    Surface.MESSAGE: frozenset(
        {"section", "divider", "image", "actions", "context", "header", "input", "file",
         "video", "rich_text", "markdown", "table"}
    ),
    Surface.MODAL: frozenset(
        {"section", "divider", "image", "actions", "context", "header", "input", "video",
         "rich_text", "markdown"}
    ),
    Surface.HOME: frozenset(
        {"section", "divider", "image", "actions", "context", "header", "input", "video",
         "rich_text", "markdown"}
    ),
}

_SELECT_TYPES = frozenset({"static_select", "multi_static_select"})
_ACTION_ELEMENTS = frozenset(
    {"button", "static_select", "multi_static_select", "external_select",
     "multi_external_select", "users_select", "multi_users_select", "conversations_select",
     "multi_conversations_select", "channels_select", "multi_channels_select", "overflow",
     "datepicker", "timepicker", "datetimepicker", "checkboxes", "radio_buttons",
     "plain_text_input", "email_text_input", "url_text_input", "number_input",
     "rich_text_input", "file_input", "workflow_button"}
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason Slack would refuse a payload, located by a JSON pointer."""

    pointer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.reason} [json-pointer:{self.pointer}]"


class _Walker:
    """Collects problems while walking one payload; pointers are built as it descends."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, pointer: str, reason: str) -> None:
        self.problems.append(Problem(pointer, reason))

    def max_len(self, value: object, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.add(pointer, f"must be less than {limit + 1} characters")

    def string(self, obj: Mapping[str, Any], key: str, limit: int, pointer: str,
               *, required: bool = False) -> None:
        value = obj.get(key)
        if value is None:
            if required:
                self.add(f"{pointer}/{key}", "is a required property")
            return
        if not isinstance(value, str):
            self.add(f"{pointer}/{key}", "must be a string")
            return
        self.max_len(value, limit, f"{pointer}/{key}")

    def text_object(self, obj: object, pointer: str, limit: int, *,
                    plain_only: bool = False, required: bool = True) -> None:
        if obj is None:
            if required:
                self.add(pointer, "is a required property")
            return
        if not isinstance(obj, Mapping):
            self.add(pointer, "must be a text object")
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.add(f"{pointer}/type", f"must be one of {', '.join(allowed)}")
        text = obj.get("text")
        if not isinstance(text, str):
            self.add(f"{pointer}/text", "is a required property")
            return
        if not text:
            self.add(f"{pointer}/text", "must be more than 0 characters")
        self.max_len(text, limit, f"{pointer}/text")

    def array(self, obj: Mapping[str, Any], key: str, pointer: str, *, minimum: int,
              maximum: int, required: bool = True) -> list[Any]:
        value = obj.get(key)
        if value is None:
            if required:
                self.add(f"{pointer}/{key}", "is a required property")
            return []
        if not isinstance(value, list):
            self.add(f"{pointer}/{key}", "must be an array")
            return []
        if len(value) < minimum:
            self.add(f"{pointer}/{key}", f"must provide at least {minimum} items")
        if len(value) > maximum:
            self.add(f"{pointer}/{key}", f"no more than {maximum} items allowed")
        return value

    def blocks(self, blocks: object, pointer: str, surface: Surface, maximum: int) -> None:
        if not isinstance(blocks, list):
            self.add(pointer, "must be an array")
            return
        if len(blocks) > maximum:
            self.add(pointer, f"no more than {maximum} items allowed")
        seen: set[str] = set()
        for index, block in enumerate(blocks):
            where = f"{pointer}/{index}"
            if not isinstance(block, Mapping):
                self.add(where, "must be an object")
                continue
            block_id = block.get("block_id")
            if isinstance(block_id, str):
                if block_id in seen:
                    self.add(f"{where}/block_id", f"duplicate block_id {block_id!r}")
                seen.add(block_id)
            self.block(block, where, surface)

    def block(self, block: Mapping[str, Any], pointer: str, surface: Surface) -> None:
        kind = block.get("type")
        if kind not in _BLOCK_TYPES[surface]:
            self.add(f"{pointer}/type", f"unsupported block type {kind!r} for a {surface}")
            return
        self.string(block, "block_id", BLOCK_ID_MAX, pointer)
        check = getattr(self, f"block_{kind}", None)
        if check is not None:
            check(block, pointer)
        self.second_opinion(block, pointer)

    def second_opinion(self, block: Mapping[str, Any], pointer: str) -> None:
        if any(p.pointer.startswith(pointer) for p in self.problems):
            return
        try:
            parsed = Block.parse(dict(block))
            if parsed is not None:
                parsed.to_dict()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError,
                AttributeError) as exc:
            self.add(pointer, f"rejected by slack_sdk.models: {exc}")

    def block_section(self, block: Mapping[str, Any], pointer: str) -> None:
        if block.get("text") is None and block.get("fields") is None:
            self.add(pointer, "must provide text or fields")
        self.text_object(block.get("text"), f"{pointer}/text", SECTION_TEXT_MAX,
                         required=False)
        fields = self.array(block, "fields", pointer, minimum=1, maximum=SECTION_FIELDS_MAX,
                            required=False)
        for index, field in enumerate(fields):
            self.text_object(field, f"{pointer}/fields/{index}", SECTION_FIELD_TEXT_MAX)
        accessory = block.get("accessory")
        if accessory is not None:
            self.element(accessory, f"{pointer}/accessory", allow_image=True)

    def block_header(self, block: Mapping[str, Any], pointer: str) -> None:
        self.text_object(block.get("text"), f"{pointer}/text", HEADER_TEXT_MAX,
                         plain_only=True)

    def block_markdown(self, block: Mapping[str, Any], pointer: str) -> None:
        self.string(block, "text", MARKDOWN_BLOCK_TEXT_MAX, pointer, required=True)

    def block_context(self, block: Mapping[str, Any], pointer: str) -> None:
        elements = self.array(block, "elements", pointer, minimum=1,
                              maximum=CONTEXT_ELEMENTS_MAX)
        for index, element in enumerate(elements):
            where = f"{pointer}/elements/{index}"
            if isinstance(element, Mapping) and element.get("type") == "image":
                self.image(element, where)
            else:
                self.text_object(element, where, SECTION_TEXT_MAX)

    def block_actions(self, block: Mapping[str, Any], pointer: str) -> None:
        elements = self.array(block, "elements", pointer, minimum=1,
                              maximum=ACTIONS_ELEMENTS_MAX)
        action_ids: set[str] = set()
        for index, element in enumerate(elements):
            where = f"{pointer}/elements/{index}"
            self.element(element, where)
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    self.add(f"{where}/action_id", f"duplicate action_id {action_id!r}")
                action_ids.add(action_id)

    def block_image(self, block: Mapping[str, Any], pointer: str) -> None:
        self.image(block, pointer)
        self.text_object(block.get("title"), f"{pointer}/title", IMAGE_TITLE_MAX,
                         plain_only=True, required=False)

    def block_input(self, block: Mapping[str, Any], pointer: str) -> None:
        self.text_object(block.get("label"), f"{pointer}/label", INPUT_LABEL_MAX,
                         plain_only=True)
        self.text_object(block.get("hint"), f"{pointer}/hint", INPUT_HINT_MAX,
                         plain_only=True, required=False)
        element = block.get("element")
        if element is None:
            self.add(f"{pointer}/element", "is a required property")
        else:
            self.element(element, f"{pointer}/element")

    def image(self, obj: Mapping[str, Any], pointer: str) -> None:
        if obj.get("image_url") is None and obj.get("slack_file") is None:
            self.add(pointer, "must provide image_url or slack_file")
        self.string(obj, "image_url", IMAGE_URL_MAX, pointer)
        self.string(obj, "alt_text", IMAGE_ALT_TEXT_MAX, pointer, required=True)

    def element(self, element: object, pointer: str, *, allow_image: bool = False) -> None:
        if not isinstance(element, Mapping):
            self.add(pointer, "must be an object")
            return
        kind = element.get("type")
        if kind == "image" and allow_image:
            self.image(element, pointer)
            return
        if kind not in _ACTION_ELEMENTS:
            self.add(f"{pointer}/type", f"unsupported element type {kind!r}")
            return
        self.string(element, "action_id", ACTION_ID_MAX, pointer)
        self.text_object(element.get("placeholder"), f"{pointer}/placeholder",
                         PLACEHOLDER_MAX, plain_only=True, required=False)
        if element.get("confirm") is not None:
            self.confirm(element["confirm"], f"{pointer}/confirm")
        if kind == "button":
            self.text_object(element.get("text"), f"{pointer}/text", BUTTON_TEXT_MAX,
                             plain_only=True)
            self.string(element, "value", BUTTON_VALUE_MAX, pointer)
            self.string(element, "url", BUTTON_URL_MAX, pointer)
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.add(f"{pointer}/style", "must be one of primary, danger")
        elif kind in _SELECT_TYPES:
            self.select(element, pointer)
        elif kind == "overflow":
            self.options(element, pointer, minimum=1, maximum=OVERFLOW_OPTIONS_MAX)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(element, pointer, minimum=1, maximum=CHOICE_OPTIONS_MAX)
        elif kind == "plain_text_input":
            self.string(element, "initial_value", TEXT_INPUT_LENGTH_MAX, pointer)
            for key in ("min_length", "max_length"):
                value = element.get(key)
                if isinstance(value, int) and value > TEXT_INPUT_LENGTH_MAX:
                    self.add(f"{pointer}/{key}", f"must be at most {TEXT_INPUT_LENGTH_MAX}")

    def select(self, element: Mapping[str, Any], pointer: str) -> None:
        has_options = element.get("options") is not None
        has_groups = element.get("option_groups") is not None
        if has_options == has_groups:
            self.add(pointer, "must provide exactly one of options or option_groups")
        if has_options:
            self.options(element, pointer, minimum=1, maximum=SELECT_OPTIONS_MAX)
        groups = self.array(element, "option_groups", pointer, minimum=1,
                            maximum=SELECT_OPTIONS_MAX, required=False)
        for index, group in enumerate(groups):
            where = f"{pointer}/option_groups/{index}"
            if isinstance(group, Mapping):
                self.text_object(group.get("label"), f"{where}/label", OPTION_TEXT_MAX,
                                 plain_only=True)
                self.options(group, where, minimum=1, maximum=SELECT_OPTIONS_MAX)

    def options(self, holder: Mapping[str, Any], pointer: str, *, minimum: int,
                maximum: int) -> None:
        for index, option in enumerate(
            self.array(holder, "options", pointer, minimum=minimum, maximum=maximum)
        ):
            where = f"{pointer}/options/{index}"
            if not isinstance(option, Mapping):
                self.add(where, "must be an object")
                continue
            self.text_object(option.get("text"), f"{where}/text", OPTION_TEXT_MAX)
            self.string(option, "value", OPTION_VALUE_MAX, where, required=True)
            self.text_object(option.get("description"), f"{where}/description",
                             OPTION_DESCRIPTION_MAX, required=False)

    def confirm(self, confirm: object, pointer: str) -> None:
        if not isinstance(confirm, Mapping):
            self.add(pointer, "must be an object")
            return
        self.text_object(confirm.get("title"), f"{pointer}/title", CONFIRM_TITLE_MAX,
                         plain_only=True)
        self.text_object(confirm.get("text"), f"{pointer}/text", CONFIRM_TEXT_MAX)
        self.text_object(confirm.get("confirm"), f"{pointer}/confirm", CONFIRM_BUTTON_MAX,
                         plain_only=True)
        self.text_object(confirm.get("deny"), f"{pointer}/deny", CONFIRM_BUTTON_MAX,
                         plain_only=True)


def check_message_blocks(blocks: object, pointer: str = "/blocks") -> list[Problem]:
    """Problems with a message's `blocks` (chat.postMessage, chat.update, response_url)."""
    walker = _Walker()
    walker.blocks(blocks, pointer, Surface.MESSAGE, MESSAGE_BLOCKS_MAX)
    return walker.problems


def check_message_text(text: object, pointer: str = "/text") -> list[Problem]:
    walker = _Walker()
    if text is not None and not isinstance(text, str):
        walker.add(pointer, "must be a string")
    walker.max_len(text, MESSAGE_TEXT_MAX, pointer)
    return walker.problems


def check_view(view: object, pointer: str = "/view") -> list[Problem]:
    """Problems with a modal or App Home view (views.open/push/update/publish, responses)."""
    walker = _Walker()
    if not isinstance(view, Mapping):
        walker.add(pointer, "must be an object")
        return walker.problems
    kind = view.get("type")
    if kind not in (Surface.MODAL, Surface.HOME):
        walker.add(f"{pointer}/type", "must be one of modal, home")
        return walker.problems
    surface = Surface(kind)
    if surface is Surface.MODAL:
        walker.text_object(view.get("title"), f"{pointer}/title", VIEW_TITLE_MAX,
                           plain_only=True)
        walker.text_object(view.get("submit"), f"{pointer}/submit", VIEW_SUBMIT_MAX,
                           plain_only=True, required=False)
        walker.text_object(view.get("close"), f"{pointer}/close", VIEW_CLOSE_MAX,
                           plain_only=True, required=False)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            walker.add(f"{pointer}/submit", "is required when the view has input blocks")
    else:
        for key in ("submit", "close"):
            if view.get(key) is not None:
                walker.add(f"{pointer}/{key}", "is not allowed in a home view")
    walker.string(view, "private_metadata", PRIVATE_METADATA_MAX, pointer)
    walker.string(view, "callback_id", CALLBACK_ID_MAX, pointer)
    walker.string(view, "external_id", EXTERNAL_ID_MAX, pointer)
    walker.blocks(view.get("blocks"), f"{pointer}/blocks", surface, VIEW_BLOCKS_MAX)
    if not walker.problems:
        try:
            View(**dict(view)).to_dict()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError,
                AttributeError) as exc:
            walker.add(pointer, f"rejected by slack_sdk.models: {exc}")
    return walker.problems


def describe(problems: Iterable[Problem]) -> list[str]:
    return [str(p) for p in problems]
