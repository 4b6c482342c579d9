"""The one Jinja2 setup: reply templates (user-written, sandboxed) and Block Kit cards.

Reply templates are written by the care team, not by developers, so they render in an
immutable sandbox with strict undefined names and every failure becomes one sentence a
person can act on. Block Kit templates ship with the code; they use a normal environment
whose filters make user text safe for Slack.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.domain.mention import Author, Mention, SourceKind
from bot.slack.text import escape_and_truncate, escape_mrkdwn, quote_block, safe_plain
from bot.slack.text import truncate_graphemes as _truncate_graphemes

TEMPLATES_ENV = "MENTIONDESK_TEMPLATES"
ALL_NETWORKS = "*"
KNOWN_NETWORKS = frozenset(kind.value for kind in SourceKind)

# A user template must not be able to allocate gigabytes with `'x' * 10**9`.
_MAX_SEQUENCE_RESULT = 100_000
_MAX_EXPONENT = 100

_HEADER = re.compile(r"\A\s*\{#(?P<toml>.*?)#\}", re.DOTALL)
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_NUMBER = re.compile(r"\A[+-]?\d+(\.\d+)?\Z")
_TEMPLATE_KEYS = frozenset({"name", "title", "description", "networks", "preapproved", "variables"})
_VARIABLE_KEYS = frozenset({"name", "label", "type", "required", "choices", "default"})


class VariableType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    CHOICE = "choice"
    URL = "url"


class TemplateProblem(Exception):
    """A reply template file that cannot be used; says which file and why."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class RenderError(Exception):
    """Rendering failed; `field` names the variable to fix, when one is to blame."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class BlockTemplateError(Exception):
    """A shipped Block Kit template is missing, broken or rendered invalid JSON."""


@dataclass(frozen=True, slots=True)
class TemplateVariable:
    name: str
    label: str
    type: VariableType = VariableType.TEXT
    required: bool = True
    choices: tuple[str, ...] = ()
    default: str | int | float | None = None


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    """One reply template file. `source` is the whole file; the header is a Jinja comment."""

    name: str
    title: str
    networks: tuple[str, ...]
    preapproved: bool
    variables: tuple[TemplateVariable, ...]
    source: str
    description: str = ""
    path: str = ""

    def allows(self, network: str) -> bool:
        return ALL_NETWORKS in self.networks or network.lower() in self.networks


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """What a reply template can see besides its own variables. All of it is data, never code."""

    mention: Mention
    case_id: int
    agent_id: str = ""
    agent_name: str = ""
    brand: Mapping[str, Any] = field(default_factory=dict)

    def as_template_context(self) -> dict[str, Any]:
        author = self.mention.author
        return {
            "author": {
                "handle": author.handle,
                "name": author.name,
                "followers": author.followers,
            },
            "mention": {
                "text": self.mention.text,
                "url": self.mention.url,
                "source": self.mention.source,
                "created_at": self.mention.created_at,
            },
            "agent": {"name": self.agent_name, "id": self.agent_id},
            "case_id": self.case_id,
            "brand": dict(self.brand),
        }


# ---------------------------------------------------------------------------------------------
# Loading reply templates


def load_reply_templates(directory: Path) -> list[ReplyTemplate]:
    """Every `*.j2` reply template in `directory`, sorted by name; the first bad file raises."""
    templates, problems = check_reply_templates(directory)
    if problems:
        raise problems[0]
    return templates


def check_reply_templates(
    directory: Path,
) -> tuple[list[ReplyTemplate], list[TemplateProblem]]:
    """Like `load_reply_templates`, but collects every problem (for `check-config`)."""
    if not directory.is_dir():
        return [], [TemplateProblem(directory, "reply template directory does not exist")]
    templates: list[ReplyTemplate] = []
    problems: list[TemplateProblem] = []
    for path in sorted(directory.glob("*.j2")):
        try:
            templates.append(load_reply_template(path))
        except TemplateProblem as problem:
            problems.append(problem)
    return templates, problems


def load_reply_template(path: Path) -> ReplyTemplate:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateProblem(path, f"cannot be read ({exc})") from exc
    return parse_reply_template(source, path=path)


def parse_reply_template(source: str, *, path: Path | str | None = None) -> ReplyTemplate:
    """Validate the TOML header and compile the body, so bad templates fail at load time."""
    where = Path(path) if path is not None else Path("<template>")
    match = _HEADER.match(source)
    if match is None:
        raise TemplateProblem(where, "must start with a {# ... #} header holding TOML metadata")
    try:
        header = tomllib.loads(match.group("toml"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateProblem(where, f"header is not valid TOML ({exc})") from exc

    unknown = sorted(set(header) - _TEMPLATE_KEYS)
    if unknown:
        raise TemplateProblem(where, f"unknown header key(s): {', '.join(unknown)}")

    stem = where.name.removesuffix(".j2") if path is not None else None
    name = header.get("name", stem)
    if name is None:
        raise TemplateProblem(where, "'name' is required")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TemplateProblem(where, "'name' must be letters, digits, '_' or '-' (at most 64)")
    if stem is not None and name != stem:
        raise TemplateProblem(where, f"'name' is {name!r} but the file is named {stem!r}")
    title = header.get("title")
    if not isinstance(title, str) or not title.strip():
        raise TemplateProblem(where, "'title' is required and must be a non-empty string")
    description = header.get("description", "")
    if not isinstance(description, str):
        raise TemplateProblem(where, "'description' must be a string")
    preapproved = header.get("preapproved", False)
    if not isinstance(preapproved, bool):
        raise TemplateProblem(where, "'preapproved' must be true or false")

    networks = _parse_networks(where, header.get("networks", [ALL_NETWORKS]))
    variables = _parse_variables(where, header.get("variables", []))

    try:
        _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(
            where, f"template syntax error on line {exc.lineno}: {exc.message}"
        ) from exc

    return ReplyTemplate(
        name=name,
        title=title.strip(),
        networks=networks,
        preapproved=preapproved,
        variables=variables,
        source=source,
        description=description.strip(),
        path="" if path is None else str(where),
    )


def _parse_networks(path: Path, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(n, str) for n in raw):
        raise TemplateProblem(path, "'networks' must be a non-empty list of network names")
    networks = tuple(dict.fromkeys(n.strip().lower() for n in raw))
    unknown = [n for n in networks if n != ALL_NETWORKS and n not in KNOWN_NETWORKS]
    if unknown:
        known = ", ".join(sorted(KNOWN_NETWORKS))
        raise TemplateProblem(path, f'unknown network(s) {", ".join(unknown)}; use {known} or "*"')
    return networks


def _parse_variables(path: Path, raw: Any) -> tuple[TemplateVariable, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
        raise TemplateProblem(path, "'variables' must be a list of [[variables]] tables")
    seen: set[str] = set()
    variables: list[TemplateVariable] = []
    for index, entry in enumerate(raw, start=1):
        where = f"variable {index}"
        unknown = sorted(set(entry) - _VARIABLE_KEYS)
        if unknown:
            raise TemplateProblem(path, f"{where}: unknown key(s): {', '.join(unknown)}")
        name = entry.get("name")
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise TemplateProblem(path, f"{where}: 'name' must be a Python-style identifier")
        if hasattr(dict, name):
            raise TemplateProblem(path, f"{where}: {name!r} is reserved; choose another name")
        where = f"variable {name!r}"
        if name in seen:
            raise TemplateProblem(path, f"{where} is declared twice")
        seen.add(name)
        label = entry.get("label", name)
        if not isinstance(label, str) or not label.strip():
            raise TemplateProblem(path, f"{where}: 'label' must be a non-empty string")
        try:
            kind = VariableType(entry.get("type", "text"))
        except ValueError:
            kinds = ", ".join(k.value for k in VariableType)
            raise TemplateProblem(path, f"{where}: 'type' must be one of {kinds}") from None
        required = entry.get("required", True)
        if not isinstance(required, bool):
            raise TemplateProblem(path, f"{where}: 'required' must be true or false")
        choices = entry.get("choices", [])
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise TemplateProblem(path, f"{where}: 'choices' must be a list of strings")
        if kind is VariableType.CHOICE and not choices:
            raise TemplateProblem(path, f"{where}: a choice variable needs 'choices'")
        if kind is not VariableType.CHOICE and choices:
            raise TemplateProblem(path, f"{where}: only choice variables take 'choices'")
        default = entry.get("default")
        if default is not None and (
            isinstance(default, bool) or not isinstance(default, str | int | float)
        ):
            raise TemplateProblem(path, f"{where}: 'default' must be a string or a number")
        variable = TemplateVariable(
            name=name,
            label=label.strip(),
            type=kind,
            required=required,
            choices=tuple(choices),
            default=default,
        )
        if default is not None:
            try:
                _coerce(variable, str(default))
            except RenderError as exc:
                raise TemplateProblem(path, f"{where}: bad 'default': {exc.message}") from exc
        variables.append(variable)
    return tuple(variables)


def templates_for_network(templates: Iterable[ReplyTemplate], network: str) -> list[ReplyTemplate]:
    """The templates usable on `network` (those listing it, or `"*"`)."""
    return [template for template in templates if template.allows(network)]


# ---------------------------------------------------------------------------------------------
# Rendering reply templates


class _ReplySandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus caps on `*` and `**` so a template cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError("the exponent is too large")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * count > _MAX_SEQUENCE_RESULT
                ):
                    raise SecurityError("the repeated text would be too long")
        return super().call_binop(context, operator, left, right)


def _finalize(value: Any) -> Any:
    return "" if value is None else value


@lru_cache(maxsize=1)
def _reply_environment() -> _ReplySandbox:
    return _ReplySandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    return _reply_environment().from_string(source)


def _coerce(variable: TemplateVariable, raw: str) -> Any:
    text = raw.strip()
    label = variable.label
    if variable.type is VariableType.NUMBER:
        if not _NUMBER.match(text):
            raise RenderError(variable.name, f"“{label}” must be a number, like 3 or 2.5.")
        number = float(text) if "." in text else int(text)
        if isinstance(number, float) and not math.isfinite(number):
            raise RenderError(variable.name, f"“{label}” must be a finite number.")
        return number
    if variable.type is VariableType.CHOICE:
        if text not in variable.choices:
            options = ", ".join(f"“{choice}”" for choice in variable.choices)
            raise RenderError(variable.name, f"“{label}” must be one of {options}.")
        return text
    if variable.type is VariableType.URL:
        parts = urlsplit(text)
        if (
            parts.scheme.lower() not in {"http", "https"}
            or not parts.hostname
            or any(char.isspace() or ord(char) < 0x20 for char in text)
        ):
            raise RenderError(
                variable.name, f"“{label}” must be a web address starting with https:// or http://."
            )
        return text
    return text


def coerce_values(template: ReplyTemplate, values: Mapping[str, str]) -> dict[str, Any]:
    """Typed values for `vars`; raises `RenderError` for the first bad or missing variable.

    Keys the template does not declare are ignored. An optional variable left empty takes
    its default, else None (which renders as nothing).
    """
    typed: dict[str, Any] = {}
    for variable in template.variables:
        raw = values.get(variable.name)
        if raw is None or not str(raw).strip():
            if variable.default is not None:
                typed[variable.name] = _coerce(variable, str(variable.default))
            elif variable.required:
                raise RenderError(variable.name, f"“{variable.label}” is required.")
            else:
                typed[variable.name] = None
            continue
        typed[variable.name] = _coerce(variable, str(raw))
    return typed


def value_errors(template: ReplyTemplate, values: Mapping[str, str]) -> dict[str, str]:
    """Every variable's problem at once, keyed by variable name (for a modal's field errors)."""
    errors: dict[str, str] = {}
    for variable in template.variables:
        single = ReplyTemplate(
            name=template.name,
            title=template.title,
            networks=template.networks,
            preapproved=template.preapproved,
            variables=(variable,),
            source="",
        )
        try:
            coerce_values(single, values)
        except RenderError as exc:
            errors[variable.name] = exc.message
    return errors


def render_reply(template: ReplyTemplate, context: ReplyContext, values: Mapping[str, str]) -> str:
    """The reply text. Anything that goes wrong becomes a one-sentence `RenderError`."""
    typed = coerce_values(template, values)
    try:
        compiled = _compile(template.source)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            None, f"The template has a syntax error on line {exc.lineno}: {exc.message}."
        ) from exc
    try:
        rendered = compiled.render(**context.as_template_context(), vars=typed)
    except SecurityError as exc:
        raise RenderError(
            None, f"The template tried to use something templates may not access ({_clause(exc)})."
        ) from exc
    except jinja2.UndefinedError as exc:
        raise RenderError(
            None, f"The template uses a name that is not defined ({_clause(exc)})."
        ) from exc
    except jinja2.TemplateError as exc:
        raise RenderError(None, f"The template failed to render ({_clause(exc)}).") from exc
    except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise RenderError(None, f"The template failed to render ({_clause(exc)}).") from exc
    return rendered.strip()


def _clause(exc: Exception) -> str:
    return str(exc).strip().rstrip(".")


def sample_values(template: ReplyTemplate) -> dict[str, str]:
    """Plausible values for every variable, so `check-config` can render each template."""
    samples: dict[str, str] = {}
    for variable in template.variables:
        if variable.default is not None:
            samples[variable.name] = str(variable.default)
        elif variable.type is VariableType.NUMBER:
            samples[variable.name] = "3"
        elif variable.type is VariableType.CHOICE:
            samples[variable.name] = variable.choices[0]
        elif variable.type is VariableType.URL:
            samples[variable.name] = "https://status.example.com/"
        else:
            samples[variable.name] = f"sample {variable.name.replace('_', ' ')}"
    return samples


def sample_context(
    network: str = "generic", brand: Mapping[str, Any] | None = None
) -> ReplyContext:
    """A made-up mention and agent to render templates against without a database."""
    mention = Mention(
        source=network,
        external_id="sample-1",
        text="@brand my order never arrived and nobody answers",
        created_at=datetime(2026, 1, 1, 9, 30, tzinfo=UTC),
        author=Author(handle="@sample_customer", name="Sam Customer", followers=120),
        url="https://example.com/posts/sample-1",
    )
    return ReplyContext(
        mention=mention,
        case_id=1,
        agent_id="U0SAMPLE",
        agent_name="Alex Agent",
        brand=dict(brand or {"name": "Example Brand"}),
    )


# ---------------------------------------------------------------------------------------------
# Block Kit templates and the Renderer


def default_templates_dir() -> Path:
    """Where `templates/` is: `$MENTIONDESK_TEMPLATES` if set, else next to the `bot` package
    (a source checkout or editable install), else `<prefix>/share/mentiondesk/templates`.
    """
    configured = os.environ.get(TEMPLATES_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    candidates = (
        Path(__file__).resolve().parent.parent / "templates",
        Path(sys.prefix) / "share" / "mentiondesk" / "templates",
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the templates directory; set {TEMPLATES_ENV} to its path")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _mrkdwn(value: Any, limit: int | None = None) -> str:
    text = "" if value is None else str(value)
    return escape_mrkdwn(text) if limit is None else escape_and_truncate(text, limit)


def _plain(value: Any, limit: int | None = None) -> str:
    return safe_plain("" if value is None else str(value), limit)


def _truncate_g(value: Any, limit: int, ellipsis: str = "…") -> str:
    return _truncate_graphemes("" if value is None else str(value), limit, ellipsis)


def _quote(value: Any, limit: int = 3000) -> str:
    return quote_block("" if value is None else str(value), limit)


def _blocks_environment(templates_dir: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        mrkdwn=_mrkdwn, plain=_plain, truncate_g=_truncate_g, tojson=_json_dumps, quote=_quote
    )
    return environment


class Renderer:
    """Both kinds of template under one `templates/` directory (`replies/`, `cards/`, ...)."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = Path(templates_dir)
        self._blocks = _blocks_environment(self.templates_dir)

    @property
    def replies_dir(self) -> Path:
        return self.templates_dir / "replies"

    def reply_templates(self, network: str | None = None) -> list[ReplyTemplate]:
        templates = load_reply_templates(self.replies_dir)
        return templates if network is None else templates_for_network(templates, network)

    def reply_template(self, name: str) -> ReplyTemplate | None:
        return next((t for t in self.reply_templates() if t.name == name), None)

    def render_reply(
        self, template: ReplyTemplate, context: ReplyContext, values: Mapping[str, str]
    ) -> str:
        return render_reply(template, context, values)

    def render_blocks(self, template_name: str, **context: Any) -> Any:
        """Render a `*.json.j2` template (path under the templates dir) and parse the JSON."""
        name = template_name if template_name.endswith(".j2") else f"{template_name}.json.j2"
        try:
            rendered = self._blocks.get_template(name).render(**context)
        except jinja2.TemplateNotFound as exc:
            raise BlockTemplateError(
                f"no Block Kit template {name!r} under {self.templates_dir}"
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise BlockTemplateError(
                f"{name}: syntax error on line {exc.lineno}: {exc.message}"
            ) from exc
        except jinja2.UndefinedError as exc:
            raise BlockTemplateError(f"{name}: {exc.message}") from exc
        try:
            return json.loads(rendered)
        except json.JSONDecodeError as exc:
            raise BlockTemplateError(
                f"{name} rendered invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
