"""Settings: secrets and wiring from the environment, everything else from a TOML file.

Secrets never sit in the file: a `*_env` key names the environment variable that holds them.
Tests build `Settings` explicitly instead of reading the process environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.mention import SourceKind
from bot.domain.sla import WEEKDAYS, BusinessHours, DurationError, SlaPolicy, parse_duration
from bot.triage.settings import TriageSettings

SLA_PRIORITIES = ("urgent", "high", "normal", "low")

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///mentiondesk.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackConfig(_Strict):
    mentions_channel: str = "C0MENTIONS"
    approvals_channel: str = "C0APPROVALS"
    alerts_channel: str = "C0ALERTS"
    admin_channel: str = ""
    review_channel: str = ""
    leads: list[str] = Field(default_factory=list)
    lead_usergroup: str = ""
    agents: list[str] = Field(default_factory=list)
    agent_usergroup: str = ""
    approval_in_thread: bool = False
    usergroup_cache_seconds: float = 60.0

    @field_validator("leads", "agents")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        for user in value:
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user):
                raise ValueError(f"'{user}' is not a Slack user id (U… or W…)")
        return value

    @field_validator("lead_usergroup", "agent_usergroup")
    @classmethod
    def _usergroup(cls, value: str) -> str:
        if value and not re.fullmatch(r"S[A-Z0-9]{2,}", value):
            raise ValueError(f"'{value}' is not a Slack user group id (S…)")
        return value


class SourceConfig(BaseModel):
    """One `[[sources]]` entry. Network-specific keys are kept in `model_extra`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    kind: SourceKind
    base_url: str | None = None
    token_env: str | None = None
    secret_env: str | None = None
    reply_url: str | None = None
    poll_seconds: float = Field(default=60.0, gt=0)
    keywords: list[str] = Field(default_factory=list)
    silence_alert_minutes: float | None = Field(default=None, gt=0)
    reply_limit: int | None = Field(default=None, gt=0)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SOURCE_NAME.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (at most 63)")
        return value

    @field_validator("token_env", "secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"'{value}' is not an environment variable name")
        return value

    def option(self, key: str, default: Any = None) -> Any:
        """A network-specific key of this entry."""
        return (self.model_extra or {}).get(key, default)

    def secret(self, env: Mapping[str, str] | None = None) -> SecretStr | None:
        return _from_env(self.secret_env, env)

    def token(self, env: Mapping[str, str] | None = None) -> SecretStr | None:
        return _from_env(self.token_env, env)


class RepliesConfig(_Strict):
    templates_dir: str = "templates/replies"
    allow_preapproved_without_approval: bool = False


class NetworkConfig(_Strict):
    """Outbound requests (see bot/netpolicy.py): private addresses only when allowed here."""

    allow_private: bool = False


class BusinessHoursConfig(_Strict):
    """`[sla.business_hours]`: SLA clocks only run while the team is open."""

    timezone: str = "UTC"
    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: str = "09:00"
    end: str = "17:00"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. 'Europe/Berlin')"
                             ) from None
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [d.strip().lower()[:3] for d in value]
        bad = [d for d, raw in zip(days, value, strict=True) if d not in WEEKDAYS or not raw]
        if bad or not days:
            raise ValueError(f"days must be some of {', '.join(WEEKDAYS)}")
        return days

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"'{value}' is not a time of day as HH:MM")
        return value

    @model_validator(mode="after")
    def _order(self) -> BusinessHoursConfig:
        if self.end <= self.start:
            raise ValueError("end must be later than start")
        return self

    def hours(self) -> BusinessHours:
        return BusinessHours(
            zone=ZoneInfo(self.timezone),
            days=frozenset(WEEKDAYS.index(d) for d in self.days),
            start=time.fromisoformat(self.start),
            end=time.fromisoformat(self.end),
        )


class SlaConfig(_Strict):
    """`[sla]`: first-response targets per priority. No targets: no timers."""

    targets: dict[str, float | str] = Field(default_factory=dict)
    nudge_before: float | str = 0.25
    business_hours: BusinessHoursConfig | None = None

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: dict[str, float | str]) -> dict[str, float | str]:
        for priority, target in value.items():
            if priority not in SLA_PRIORITIES:
                raise ValueError(f"'{priority}' is not a priority ({', '.join(SLA_PRIORITIES)})")
            try:
                parse_duration(target)
            except DurationError as exc:
                raise ValueError(f"{priority}: {exc}") from None
        return value

    @field_validator("nudge_before")
    @classmethod
    def _nudge(cls, value: float | str) -> float | str:
        if isinstance(value, str):
            try:
                parse_duration(value)
            except DurationError as exc:
                raise ValueError(str(exc)) from None
        elif not 0 < value < 1:
            raise ValueError("a fraction of the target between 0 and 1 (e.g. 0.25), or a "
                             "duration such as '10m'")
        return value

    def policy(self) -> SlaPolicy:
        nudge = (parse_duration(self.nudge_before) if isinstance(self.nudge_before, str)
                 else float(self.nudge_before))
        return SlaPolicy(
            targets={p: parse_duration(t) for p, t in self.targets.items()},
            nudge_before=nudge,
            hours=self.business_hours.hours() if self.business_hours else None,
        )

    @property
    def timezone(self) -> ZoneInfo:
        """Where report days begin: the business hours' zone, else UTC."""
        return ZoneInfo(self.business_hours.timezone if self.business_hours else "UTC")


class ReliabilityConfig(_Strict):
    """`[reliability]`: outbox leases, Slack pacing, storm digests, dedup retention."""

    lease_seconds: float = Field(default=60.0, ge=3)
    post_per_second: float = Field(default=1.0, gt=0)
    post_burst: int = Field(default=3, ge=1)
    update_per_minute: float = Field(default=50.0, gt=0)
    digest_after_seconds: float = Field(default=120.0, gt=0)
    digest_min_size: int = Field(default=5, ge=2)
    digest_page_size: int = Field(default=20, ge=1, le=45)
    dedup_retention_hours: float = Field(default=24.0, ge=24)
    pace_scale: float = Field(default=1.0, gt=0)


class FileConfig(_Strict):
    """The whole TOML file."""

    slack: SlackConfig = Field(default_factory=SlackConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    brand: dict[str, str] = Field(default_factory=lambda: {"name": "Our brand"})
    replies: RepliesConfig = Field(default_factory=RepliesConfig)
    reliability: ReliabilityConfig = Field(default_factory=ReliabilityConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    sla: SlaConfig = Field(default_factory=SlaConfig)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in value:
            if source.name in seen:
                raise ValueError(f"source name '{source.name}' is used twice")
            seen.add(source.name)
        return value

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)


class Environment(BaseSettings):
    """What the process environment provides (CONTRACT.md's variables)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    mentiondesk_config: str = "mentiondesk.toml"
    port: int = 3000
    host: str = "0.0.0.0"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"


class Settings(BaseModel):
    """Everything the composition root needs, built once at start."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    env: Environment
    file: FileConfig
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)

    @property
    def sandbox(self) -> bool:
        """No bot token means the local sandbox workspace."""
        return self.env.slack_bot_token is None

    def lookup(self, name: str | None) -> SecretStr | None:
        return _from_env(name, self.secrets)


def _from_env(name: str | None, env: Mapping[str, str] | None) -> SecretStr | None:
    if not name:
        return None
    value = (env if env is not None else os.environ).get(name)
    return SecretStr(value) if value else None


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def parse_file_config(data: dict[str, Any], origin: str = "config") -> FileConfig:
    """Validate a parsed TOML document, collecting every problem with its location."""
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _location(tuple(err["loc"]))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{origin}: {where}: {message}")
        raise ConfigError(problems) from None


def load_file_config(path: Path, *, missing_ok: bool = True) -> FileConfig:
    """Read the TOML file; a missing file gives defaults when `missing_ok`."""
    if not path.exists():
        if missing_ok:
            return FileConfig()
        raise ConfigError([f"{path}: file not found"])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.__class__.__name__})"]) from None
    return parse_file_config(data, origin=str(path))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from an environment mapping (the process's by default) and its file."""
    env_map = dict(os.environ if environ is None else environ)
    try:
        env = Environment(**{k.lower(): v for k, v in env_map.items() if k.isupper()})
    except ValidationError as exc:
        problems = [f"environment: {_location(tuple(e['loc'])).upper()}: {e['msg']}"
                    for e in exc.errors()]
        raise ConfigError(problems) from None
    file = load_file_config(Path(env.mentiondesk_config))
    return Settings(env=env, file=file, secrets=env_map)
