"""Request bodies Slack sends to an app: slash commands, interactions and events.

Shapes follow docs.slack.dev (slash command form fields, `block_actions` and
`view_submission` interaction payloads, the Events API `event_callback` envelope), so Bolt
parses them exactly as it parses Slack's own.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from typing import Any

from bot.sandbox.blockkit import elements
from bot.sandbox.state import StoredView, User
from bot.sandbox.workspace import Workspace

_TEXT_INPUTS = frozenset({"plain_text_input", "email_text_input", "url_text_input",
                          "number_input"})
_SINGLE_OPTION = frozenset({"static_select", "external_select", "radio_buttons"})
_MULTI_OPTION = frozenset({"multi_static_select", "multi_external_select", "checkboxes"})
_PICKERS = {
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
}
_NOT_STATEFUL = frozenset({"button", "overflow", "image", "workflow_button"})


def _options(element: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option(element: Mapping[str, Any], value: str) -> dict[str, Any]:
    for option in _options(element):
        if option.get("value") == value:
            return {k: v for k, v in option.items() if k in ("text", "value", "description")}
    raise LookupError(f"{element.get('action_id')!r} has no option with value {value!r}")


def element_state(element: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """The `state.values` entry Slack reports for one input element holding `value`."""
    kind = str(element.get("type"))
    state: dict[str, Any] = {"type": kind}
    if kind in _TEXT_INPUTS:
        state["value"] = None if value is None else str(value)
    elif kind in _SINGLE_OPTION:
        state["selected_option"] = None if value is None else _option(element, str(value))
    elif kind in _MULTI_OPTION:
        values = [] if value is None else [value] if isinstance(value, str) else list(value)
        state["selected_options"] = [_option(element, str(v)) for v in values]
    elif kind in _PICKERS:
        state[_PICKERS[kind]] = value
    else:
        state["value"] = value
    return state


def _initial(element: Mapping[str, Any]) -> Any:
    kind = element.get("type")
    if kind in _SINGLE_OPTION:
        option = element.get("initial_option")
        return option.get("value") if isinstance(option, Mapping) else None
    if kind in _MULTI_OPTION:
        return [o.get("value") for o in element.get("initial_options") or []]
    for key in ("initial_value", "initial_user", "initial_users", "initial_conversation",
                "initial_channel", "initial_date", "initial_time"):
        if key in element:
            return element[key]
    return None


def view_values(view: StoredView,
                values: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """`view.state.values` after the user typed `values` into the view.

    `values` maps an action_id to what the user entered (option values for selects), or a
    block_id to `{action_id: value}` when action ids repeat across blocks. Fields the user
    did not touch keep what they held, or their initial value, as in Slack.
    """
    wanted: dict[tuple[str | None, str], Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            for action_id, inner in value.items():
                wanted[(key, action_id)] = inner
        else:
            wanted[(None, key)] = value
    state: dict[str, dict[str, dict[str, Any]]] = copy.deepcopy(view.values)
    for block in view.blocks:
        block_id = str(block.get("block_id"))
        for element in elements(block):
            kind = element.get("type")
            action_id = str(element.get("action_id"))
            if kind in _NOT_STATEFUL:
                continue
            if (block_id, action_id) in wanted:
                value = wanted.pop((block_id, action_id))
            elif (None, action_id) in wanted:
                value = wanted.pop((None, action_id))
            elif action_id in state.get(block_id, {}):
                continue
            elif block.get("type") == "input":
                value = _initial(element)
            else:
                continue
            state.setdefault(block_id, {})[action_id] = element_state(element, value)
    if wanted:
        missing = ", ".join(a for _, a in wanted)
        raise LookupError(f"view {view.id} has no input for {missing}")
    return state


def missing_required(view: StoredView) -> list[str]:
    """Labels of required inputs left empty: Slack's client refuses to submit those."""
    missing = []
    for block in view.blocks:
        if block.get("type") != "input" or block.get("optional"):
            continue
        element = block.get("element") or {}
        entry = view.values.get(str(block.get("block_id")), {}).get(
            str(element.get("action_id")), {})
        filled = [v for k, v in entry.items() if k != "type" and v not in (None, "", [])]
        if not filled:
            missing.append(str((block.get("label") or {}).get("text", block.get("block_id"))))
    return missing


def user_ref(ws: Workspace, user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id}


def team_ref(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.team_id, "domain": ws.team_domain}


def command_form(ws: Workspace, *, user: User, command: str, text: str, channel: str,
                 token: str, response_url: str, trigger_id: str) -> dict[str, str]:
    return {
        "token": token,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel,
        "channel_name": ws.channel_name(channel),
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def interaction_base(ws: Workspace, *, kind: str, user: User, token: str,
                     trigger_id: str) -> dict[str, Any]:
    return {
        "type": kind,
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": token,
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
    }


def action_entry(element: Mapping[str, Any], block_id: str, action_ts: str,
                 value: Any) -> dict[str, Any]:
    """One item of a block_actions `actions` list, as Slack reports each element type."""
    kind = str(element.get("type"))
    entry: dict[str, Any] = {"action_id": element.get("action_id"), "block_id": block_id,
                             "type": kind, "action_ts": action_ts}
    if kind == "button":
        entry["text"] = copy.deepcopy(element.get("text"))
        if value is not None:
            entry["value"] = value
        if element.get("style"):
            entry["style"] = element["style"]
    elif kind == "overflow":
        entry["selected_option"] = _option(element, str(value))
    else:
        state = element_state(element, value)
        state.pop("type")
        entry.update(state)
        if element.get("placeholder"):
            entry["placeholder"] = copy.deepcopy(element["placeholder"])
    return entry


def event_envelope(ws: Workspace, event: Mapping[str, Any], *, token: str, event_id: str,
                   event_time: int) -> dict[str, Any]:
    return {
        "token": token,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [{
            "enterprise_id": None,
            "team_id": ws.team_id,
            "user_id": ws.bot_user.id,
            "is_bot": True,
            "is_enterprise_install": False,
        }],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }
