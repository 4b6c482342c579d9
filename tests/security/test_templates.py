"""Reply templates: customer text is data, template files cannot escape the sandbox."""

from __future__ import annotations

from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import pytest

from bot.domain.mention import Author
from bot.render import RenderError, load_reply_template, render_reply, sample_context

HEADER = '{#\nname = "probe"\ntitle = "Probe"\nnetworks = ["*"]\n#}\n'
ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].system('id') }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{{ mention.created_at.__class__.__init__.__globals__ }}",
    "{{ author.__class__.__subclasses__() }}",
    "{{ brand.update({'name': 'pwned'}) }}",
    "{{ author.pop('name') }}",
    "{{ ''|attr('__class__') }}",
    "{{ (''|attr('\\x5f\\x5fclass\\x5f\\x5f')) }}",
    "{{ 'x'.format.__globals__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ 'a' * 100000000 }}",
    "{{ 2 ** 100000000 }}",
    "{% for x in range(100000000) %}{% endfor %}",
]


def probe(tmp_path: Path, body: str) -> object:
    path = tmp_path / "probe.j2"
    path.write_text(HEADER + body, encoding="utf-8")
    return load_reply_template(path)


@pytest.mark.parametrize("payload", ESCAPES)
def test_known_sandbox_escapes_raise(tmp_path: Path, payload: str) -> None:
    try:
        template = probe(tmp_path, payload)
    except Exception as exc:  # refused at load time is fine too
        assert "probe.j2" in str(exc) or isinstance(exc, RenderError)
        return
    with pytest.raises(RenderError):
        render_reply(template, sample_context(), {})  # type: ignore[arg-type]


@pytest.mark.parametrize("hostile", ["{{ 7*7 }}", "{% raw %}{{ x }}{% endraw %}",
                                     "{{ lipsum.__globals__ }}", "{% include '/etc/passwd' %}",
                                     "${7*7}", "<!channel>"])
def test_customer_text_inside_a_template_is_data(tmp_path: Path, hostile: str) -> None:
    template = probe(tmp_path, "You wrote: {{ mention.text }} ({{ author.name }})")
    context = sample_context()
    context = replace(context, mention=replace(
        context.mention, text=hostile, author=Author(handle="@x", name=hostile)))
    out = render_reply(template, context, {})  # type: ignore[arg-type]
    assert out == f"You wrote: {hostile} ({hostile})"
    assert "49" not in out


def test_jinja2_is_at_least_3_1_6() -> None:
    major, minor, patch = (int(p) for p in version("jinja2").split(".")[:3])
    assert (major, minor, patch) >= (3, 1, 6)
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text("utf-8")
    assert '"jinja2>=3.1.6"' in pyproject
