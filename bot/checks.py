"""`mentiondesk check-config`: every problem in one run, each with its location."""

from __future__ import annotations

from pathlib import Path

from bot.connectors.base import is_http_url
from bot.connectors.demo import DEFAULT_PACE_SECONDS, pace_problem
from bot.connectors.registry import NETWORK_MODULES, network_config_problems
from bot.domain.mention import SourceKind
from bot.netpolicy import policy_for, source_urls
from bot.settings import Settings


def _url_problem(where: str, url: str | None) -> str | None:
    if not url:
        return None
    if not is_http_url(url):
        return f"{where}: '{url}' is not an http(s) URL"
    return None


def check_config(settings: Settings) -> list[str]:
    problems: list[str] = []
    origin = settings.env.mentiondesk_config
    if not settings.sandbox and settings.env.slack_signing_secret is None:
        problems.append("environment: SLACK_SIGNING_SECRET is not set (Slack requests would be "
                        "refused)")
    policy = policy_for(settings.file.network.allow_private, settings.file.sources)
    for index, source in enumerate(settings.file.sources):
        where = f"{origin}: sources[{index}] ({source.name})"
        network = source.kind in NETWORK_MODULES  # its own module knows what it needs
        if network and source.enabled:
            problems.extend(f"{where}: {p.removeprefix(f'source {source.name!r}: ')}"
                            for p in network_config_problems(source, settings.secrets))
        if source.kind is SourceKind.DEMO and (
                problem := pace_problem(source.option("pace_seconds", DEFAULT_PACE_SECONDS))):
            problems.append(f"{where}.pace_seconds: {problem}")
        if source.kind is SourceKind.GENERIC and not source.secret_env:
            problems.append(f"{where}.secret_env: a webhook source needs a secret")
        if not network and source.secret_env and settings.lookup(source.secret_env) is None:
            problems.append(f"{where}.secret_env: environment variable {source.secret_env} "
                            "is not set")
        if not network and source.token_env and settings.lookup(source.token_env) is None:
            problems.append(f"{where}.token_env: environment variable {source.token_env} "
                            "is not set")
        for key in () if network else ("base_url", "reply_url"):
            problem = _url_problem(f"{where}.{key}", getattr(source, key))
            if problem:
                problems.append(problem)
        problems.extend(f"{where}: {problem}" for url in source_urls(source)
                        if is_http_url(url) and (problem := policy.url_problem(url)))
    problems.extend(_template_problems(settings))
    problems.extend(settings.file.triage.problems(f"{origin}: triage"))
    return problems


def _template_problems(settings: Settings) -> list[str]:
    from bot.render import (
        RenderError,
        check_reply_templates,
        render_reply,
        sample_context,
        sample_values,
    )

    directory = Path(settings.file.replies.templates_dir)
    if not directory.is_absolute() and not directory.exists():
        from bot.render import default_templates_dir

        directory = default_templates_dir() / "replies"
    if not directory.exists():
        return [f"replies.templates_dir: {directory} does not exist"]
    templates, found = check_reply_templates(directory)
    problems = [str(p) for p in found]
    for template in templates:
        network = "generic" if "*" in template.networks else template.networks[0]
        try:
            render_reply(template, sample_context(network, settings.file.brand),
                         sample_values(template))
        except RenderError as exc:
            problems.append(f"{template.path or template.name}: does not render with sample "
                            f"values: {exc.message}")
    return problems
