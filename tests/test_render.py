from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.domain.length import check_length
from bot.domain.mention import Author, Mention
from bot.render import (
    TEMPLATES_ENV,
    BlockTemplateError,
    Renderer,
    RenderError,
    ReplyContext,
    ReplyTemplate,
    TemplateProblem,
    VariableType,
    check_reply_templates,
    default_templates_dir,
    load_reply_templates,
    parse_reply_template,
    render_reply,
    sample_context,
    sample_values,
    templates_for_network,
    value_errors,
)

REPO_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

HEADER = """{#
name = "apology_outage"
title = "Apology for an outage"
networks = ["x", "mastodon", "bluesky", "reddit", "generic"]   # or ["*"]
preapproved = true
[[variables]]
name = "eta"
label = "When will it be fixed?"
type = "text"        # text | number | choice | url
required = true
[[variables]]
name = "channel"
label = "Where to follow updates"
type = "choice"
choices = ["status page", "our account"]
#}
"""


def make(body: str, header: str = HEADER) -> ReplyTemplate:
    return parse_reply_template(header + body)


def simple(body: str, variables: str = "") -> ReplyTemplate:
    return parse_reply_template(f'{{#\nname = "t"\ntitle = "T"\n{variables}\n#}}{body}')


def context(text: str = "my parcel is late", name: str = "Ann") -> ReplyContext:
    mention = Mention(
        source="mastodon",
        external_id="1",
        text=text,
        created_at=datetime(2026, 11, 22, 8, 15, tzinfo=UTC),
        author=Author(handle="@ann@example.social", name=name, followers=1200),
        url="https://example.social/@ann/1",
    )
    return ReplyContext(
        mention=mention, case_id=42, agent_id="U1", agent_name="Bo", brand={"name": "Acme"}
    )


# --- loading -----------------------------------------------------------------------------


def test_header_is_parsed_into_typed_metadata() -> None:
    template = make("Hi {{ author.name }}")
    assert template.name == "apology_outage"
    assert template.title == "Apology for an outage"
    assert template.networks == ("x", "mastodon", "bluesky", "reddit", "generic")
    assert template.preapproved is True
    eta, channel = template.variables
    assert (eta.name, eta.type, eta.required) == ("eta", VariableType.TEXT, True)
    assert channel.type is VariableType.CHOICE
    assert channel.choices == ("status page", "our account")


def test_shipped_reply_templates_load_and_render_with_sample_values() -> None:
    templates = load_reply_templates(REPO_TEMPLATES / "replies")
    assert {t.name for t in templates} >= {"apology_outage", "refund_dm", "thanks"}
    for template in templates:
        for network in ("x", "mastodon", "bluesky"):
            if not template.allows(network):
                continue
            text = render_reply(template, sample_context(network), sample_values(template))
            assert text and "{{" not in text
            assert check_length(network, text).ok, (template.name, network)


def test_templates_for_network_honours_star() -> None:
    star = simple("x", 'networks = ["*"]')
    only_x = simple("x", 'networks = ["x"]')
    assert templates_for_network([star, only_x], "reddit") == [star]
    assert templates_for_network([star, only_x], "x") == [star, only_x]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.j2"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Hello", "must start with a {# ... #} header"),
        ('{#\ntitle = "T\n#}x', "not valid TOML"),
        ('{#\ntitle = "T"\ncolour = "red"\n#}x', "unknown header key(s): colour"),
        ('{#\nname = "other"\ntitle = "T"\n#}x', "'name' is 'other' but the file is named 'bad'"),
        ("{#\n#}x", "'title' is required"),
        ('{#\ntitle = "T"\nnetworks = ["myspace"]\n#}x', "unknown network(s) myspace"),
        ('{#\ntitle = "T"\npreapproved = "yes"\n#}x', "'preapproved' must be true or false"),
        (
            '{#\ntitle = "T"\n[[variables]]\nname = "a"\ntype = "date"\n#}x',
            "'type' must be one of",
        ),
        (
            '{#\ntitle = "T"\n[[variables]]\nname = "a"\ntype = "choice"\n#}x',
            "needs 'choices'",
        ),
        (
            '{#\ntitle = "T"\n[[variables]]\nname = "a b"\n#}x',
            "identifier",
        ),
        (
            '{#\ntitle = "T"\n[[variables]]\nname = "items"\n#}x',
            "reserved",
        ),
        (
            '{#\ntitle = "T"\n[[variables]]\nname = "a"\n[[variables]]\nname = "a"\n#}x',
            "declared twice",
        ),
        (
            '{#\ntitle = "T"\n[[variables]]\nname = "n"\ntype = "number"\ndefault = "lots"\n#}x',
            "bad 'default'",
        ),
        ('{#\ntitle = "T"\n#}{% if %}', "template syntax error on line 3"),
    ],
)
def test_bad_template_files_name_the_file_and_the_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = write(tmp_path, "bad", text)
    with pytest.raises(TemplateProblem) as caught:
        load_reply_templates(tmp_path)
    assert caught.value.path == path
    assert reason in caught.value.reason
    assert str(path) in str(caught.value)


def test_check_reply_templates_collects_every_problem(tmp_path: Path) -> None:
    write(tmp_path, "good", '{#\ntitle = "Good"\n#}Hello')
    write(tmp_path, "bad1", "no header")
    write(tmp_path, "bad2", "{#\ntitle = 3\n#}x")
    templates, problems = check_reply_templates(tmp_path)
    assert [t.name for t in templates] == ["good"]
    assert sorted(p.path.name for p in problems) == ["bad1.j2", "bad2.j2"]


def test_missing_directory_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="does not exist"):
        load_reply_templates(tmp_path / "nope")


# --- rendering ---------------------------------------------------------------------------


def test_render_uses_context_and_typed_variables() -> None:
    template = make(
        "  Hi {{ author.name or author.handle }}, sorry! Fixed {{ vars.eta }};"
        " see {{ vars.channel }}. Case {{ case_id }}, {{ agent.name }} at {{ brand.name }}"
        " re {{ mention.source }} {{ mention.created_at.strftime('%Y-%m-%d') }}.\n\n"
    )
    text = render_reply(template, context(), {"eta": "by noon", "channel": "status page"})
    assert text == (
        "Hi Ann, sorry! Fixed by noon; see status page. Case 42, Bo at Acme re mastodon 2026-11-22."
    )


def test_user_text_is_data_not_template_code() -> None:
    template = simple("{{ author.name }} said: {{ mention.text }}")
    evil = context(text="{{ 7*7 }} {% for x in range(3) %}x{% endfor %}", name="{{ 6*7 }}")
    assert render_reply(template, evil, {}) == (
        "{{ 6*7 }} said: {{ 7*7 }} {% for x in range(3) %}x{% endfor %}"
    )


def test_variable_values_are_data_too() -> None:
    template = simple("ETA {{ vars.eta }}", '[[variables]]\nname = "eta"')
    assert render_reply(template, context(), {"eta": "{{ 7*7 }}"}) == "ETA {{ 7*7 }}"


def test_missing_required_variable_names_the_field() -> None:
    template = make("{{ vars.eta }}")
    with pytest.raises(RenderError) as caught:
        render_reply(template, context(), {"eta": "  ", "channel": "status page"})
    assert caught.value.field == "eta"
    assert caught.value.message == "“When will it be fixed?” is required."


def test_choice_must_be_one_of_the_choices() -> None:
    template = make("{{ vars.channel }}")
    with pytest.raises(RenderError) as caught:
        render_reply(template, context(), {"eta": "soon", "channel": "carrier pigeon"})
    assert caught.value.field == "channel"
    assert "“status page”" in caught.value.message


@pytest.mark.parametrize(("raw", "typed"), [("3", "3 int"), ("2.5", "2.5 float"), ("-1", "-1 int")])
def test_numbers_are_coerced(raw: str, typed: str) -> None:
    template = simple(
        "{{ vars.n }} {{ 'int' if vars.n is integer else 'float' }}",
        '[[variables]]\nname = "n"\ntype = "number"',
    )
    assert render_reply(template, context(), {"n": raw}) == typed


@pytest.mark.parametrize("raw", ["three", "1e5", "nan", "inf", "1_000", "0x10"])
def test_bad_numbers_are_refused(raw: str) -> None:
    template = simple("{{ vars.n }}", '[[variables]]\nname = "n"\nlabel = "Days"\ntype = "number"')
    with pytest.raises(RenderError) as caught:
        render_reply(template, context(), {"n": raw})
    assert caught.value.field == "n"
    assert "“Days” must be a number" in caught.value.message


@pytest.mark.parametrize(
    "raw",
    ["javascript:alert(1)", "ftp://example.com/x", "example.com", "https://", "https://a b.com"],
)
def test_urls_must_be_http_or_https(raw: str) -> None:
    template = simple("{{ vars.u }}", '[[variables]]\nname = "u"\ntype = "url"')
    with pytest.raises(RenderError) as caught:
        render_reply(template, context(), {"u": raw})
    assert caught.value.field == "u"


def test_good_url_passes() -> None:
    template = simple("{{ vars.u }}", '[[variables]]\nname = "u"\ntype = "url"')
    assert render_reply(template, context(), {"u": "https://status.example.com/x?y=1"}) == (
        "https://status.example.com/x?y=1"
    )


def test_optional_variable_renders_as_nothing_and_default_applies() -> None:
    template = simple(
        "[{{ vars.a }}][{{ vars.b }}]{% if vars.a %}never{% endif %}",
        '[[variables]]\nname = "a"\nrequired = false\n'
        '[[variables]]\nname = "b"\nrequired = false\ndefault = "dflt"',
    )
    assert render_reply(template, context(), {}) == "[][dflt]"


def test_value_errors_reports_every_field() -> None:
    template = make("x")
    errors = value_errors(template, {"channel": "nope"})
    assert set(errors) == {"eta", "channel"}


def test_undefined_name_is_a_clear_error() -> None:
    with pytest.raises(RenderError) as caught:
        render_reply(simple("Hi {{ customer }}"), context(), {})
    assert caught.value.field is None
    assert caught.value.message == (
        "The template uses a name that is not defined ('customer' is undefined)."
    )


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ self.__init__.__globals__ }}",
        "{{ [].append(1) }}",
        "{{ {}.update(a=1) }}",
        "{{ 'a' * 1000000000 }}",
        "{{ 9 ** 99999999 }}",
    ],
)
def test_sandbox_violations_become_render_errors(body: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_reply(simple(body), context(), {})
    assert caught.value.field is None
    assert caught.value.message.startswith(
        "The template tried to use something templates may not access ("
    )
    assert caught.value.message.endswith(").")


def test_runtime_failure_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="failed to render"):
        render_reply(simple("{{ 1 / 0 }}"), context(), {})


def test_sample_values_render_every_type() -> None:
    template = simple(
        "{{ vars.t }} {{ vars.n + 1 }} {{ vars.c }} {{ vars.u }}",
        '[[variables]]\nname = "t"\n'
        '[[variables]]\nname = "n"\ntype = "number"\n'
        '[[variables]]\nname = "c"\ntype = "choice"\nchoices = ["one", "two"]\n'
        '[[variables]]\nname = "u"\ntype = "url"',
    )
    assert render_reply(template, sample_context(), sample_values(template)) == (
        "sample t 4 one https://status.example.com/"
    )


# --- Block Kit ---------------------------------------------------------------------------


def test_render_blocks_escapes_user_text_in_the_example_card() -> None:
    renderer = Renderer(REPO_TEMPLATES)
    blocks = renderer.render_blocks(
        "cards/_example.json.j2",
        title="Größe\u202e " + "x" * 300,
        author="<!channel> Ann",
        text='he said "hi" <@U1>\nsecond & line',
        case_id=7,
    )
    header, section, footer = blocks
    assert header["text"]["text"].startswith("Größe⟦U+202E⟧ ")
    assert len(header["text"]["text"]) <= 150
    assert section["text"]["text"] == (
        '*&lt;!channel&gt; Ann*\n>he said "hi" &lt;@U1&gt;\n>second &amp; line'
    )
    assert footer["elements"][0]["text"] == "Case #7"


def test_render_blocks_suffix_is_optional() -> None:
    blocks = Renderer(REPO_TEMPLATES).render_blocks(
        "cards/_example", title="t", author="a", text="b", case_id=1
    )
    assert blocks[2]["elements"][0]["text"] == "Case #1"


def test_render_blocks_undefined_is_an_error_naming_the_template() -> None:
    with pytest.raises(BlockTemplateError, match=r"cards/_example\.json\.j2"):
        Renderer(REPO_TEMPLATES).render_blocks("cards/_example", title="t")


def test_render_blocks_invalid_json_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "broken.json.j2").write_text('{"a": {{ value }}}', encoding="utf-8")
    renderer = Renderer(tmp_path)
    with pytest.raises(BlockTemplateError, match=r"cards/broken\.json\.j2 rendered invalid JSON"):
        renderer.render_blocks("cards/broken", value="not json")
    assert renderer.render_blocks("cards/broken", value="[1]") == {"a": [1]}


def test_render_blocks_missing_template(tmp_path: Path) -> None:
    with pytest.raises(BlockTemplateError, match="no Block Kit template"):
        Renderer(tmp_path).render_blocks("cards/nothing")


def test_truncate_g_and_tojson_filters(tmp_path: Path) -> None:
    (tmp_path / "t.json.j2").write_text(
        '{"t": {{ text | truncate_g(4) | tojson }}}', encoding="utf-8"
    )
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert Renderer(tmp_path).render_blocks("t", text="éa" + family + "zz") == {"t": "éa…"}


def test_renderer_reads_reply_templates_from_its_directory() -> None:
    renderer = Renderer(REPO_TEMPLATES)
    assert renderer.reply_template("thanks") is not None
    assert renderer.reply_template("missing") is None
    assert all(t.allows("reddit") for t in renderer.reply_templates("reddit"))


def test_default_templates_dir_prefers_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEMPLATES_ENV, str(tmp_path))
    assert default_templates_dir() == tmp_path


def test_default_templates_dir_finds_the_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEMPLATES_ENV, raising=False)
    assert default_templates_dir() == REPO_TEMPLATES
