"""`mentiondesk check-config`: every problem in one run, each with its location."""

from __future__ import annotations

from pathlib import Path

from bot.connectors.base import is_http_url
from bot.domain.mention import SourceKind
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
    for index, source in enumerate(settings.file.sources):
        where = f"{origin}: sources[{index}] ({source.name})"
        if source.kind in (SourceKind.GENERIC, SourceKind.META) and not source.secret_env:
            problems.append(f"{where}.secret_env: a webhook source needs a secret")
        if source.secret_env and settings.lookup(source.secret_env) is None:
            problems.append(f"{where}.secret_env: environment variable {source.secret_env} "
                            "is not set")
        if source.token_env and settings.lookup(source.token_env) is None:
            problems.append(f"{where}.token_env: environment variable {source.token_env} "
                            "is not set")
        for key in ("base_url", "reply_url"):
            problem = _url_problem(f"{where}.{key}", getattr(source, key))
            if problem:
                problems.append(problem)
    problems.extend(_template_problems(settings))
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
