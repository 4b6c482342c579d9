"""SLA due times in business time: time zones, weekends, daylight saving, and the config."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.sla import (
    BusinessHours,
    DurationError,
    SlaPolicy,
    add_business_time,
    format_duration,
    parse_duration,
)
from bot.settings import ConfigError, parse_file_config

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = frozenset(range(5))
OFFICE = BusinessHours(zone=BERLIN, days=WEEKDAYS, start=time(9), end=time(17))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "amount", "expected"),
    [
        # Tuesday 10:00 Berlin (09:00 UTC, winter) + 1 h → 11:00 Berlin.
        (utc(2026, 11, 24, 9, 0), timedelta(hours=1), utc(2026, 11, 24, 10, 0)),
        # Tuesday 16:30 Berlin + 1 h: 30 min today, 30 min after Wednesday's opening.
        (utc(2026, 11, 24, 15, 30), timedelta(hours=1), utc(2026, 11, 25, 8, 30)),
        # Friday 18:00 Berlin (closed) + 15 min → Monday 09:15 Berlin.
        (utc(2026, 11, 27, 17, 0), timedelta(minutes=15), utc(2026, 11, 30, 8, 15)),
        # Saturday + 4 h → Monday 13:00 Berlin.
        (utc(2026, 11, 28, 12, 0), timedelta(hours=4), utc(2026, 11, 30, 12, 0)),
        # Sunday 23:30 UTC is Monday 00:30 Berlin: opens at 09:00 Berlin.
        (utc(2026, 11, 29, 23, 30), timedelta(minutes=30), utc(2026, 11, 30, 8, 30)),
        # Exactly at closing: the whole amount goes to the next day.
        (utc(2026, 11, 24, 16, 0), timedelta(hours=2), utc(2026, 11, 25, 10, 0)),
        # Two full business days (16 h) from Thursday's opening → Monday's opening.
        (utc(2026, 11, 26, 8, 0), timedelta(hours=16), utc(2026, 11, 27, 16, 0)),
        (utc(2026, 11, 26, 8, 0), timedelta(hours=17), utc(2026, 11, 30, 9, 0)),
    ],
)
def test_business_time_skips_nights_and_weekends(start: datetime, amount: timedelta,
                                                 expected: datetime) -> None:
    assert add_business_time(start, amount, OFFICE) == expected


def test_daylight_saving_moves_the_window_not_the_hour() -> None:
    # Friday 27 March 2026 16:30 CET; Berlin switches to CEST on Sunday 29 March.
    start = utc(2026, 3, 27, 15, 30)
    due = add_business_time(start, timedelta(hours=1), OFFICE)
    # 30 min on Friday, 30 min after Monday 09:00 CEST (07:00 UTC).
    assert due == utc(2026, 3, 30, 7, 30)


def test_other_zones_and_no_business_hours() -> None:
    tokyo = BusinessHours(zone=ZoneInfo("Asia/Tokyo"), days=WEEKDAYS, start=time(9),
                          end=time(18))
    # Monday 20:00 UTC = Tuesday 05:00 Tokyo → due Tuesday 10:00 Tokyo (01:00 UTC).
    assert add_business_time(utc(2026, 11, 23, 20), timedelta(hours=1), tokyo) == utc(
        2026, 11, 24, 1)
    assert add_business_time(utc(2026, 11, 28, 12), timedelta(hours=4), None) == utc(
        2026, 11, 28, 16)
    with pytest.raises(ValueError, match="aware"):
        add_business_time(datetime(2026, 1, 1), timedelta(hours=1), OFFICE)  # noqa: DTZ001


def test_policy_nudges_by_fraction_or_fixed_lead() -> None:
    policy = SlaPolicy(targets={"urgent": timedelta(minutes=15), "normal": timedelta(hours=4)},
                       nudge_before=0.2)
    due = policy.due(utc(2026, 11, 24, 9), "urgent")
    assert due is not None
    assert (due.nudge_at, due.breach_at) == (utc(2026, 11, 24, 9, 12), utc(2026, 11, 24, 9, 15))
    # An unknown priority falls back to the normal target.
    fallback = policy.due(utc(2026, 11, 24, 9), "high")
    assert fallback is not None and fallback.target == timedelta(hours=4)
    fixed = SlaPolicy(targets={"normal": timedelta(hours=1)}, nudge_before=timedelta(minutes=10),
                      hours=OFFICE)
    due = fixed.due(utc(2026, 11, 24, 15, 30), "normal")  # 16:30 Berlin
    assert due is not None
    assert due.nudge_at == utc(2026, 11, 25, 8, 20)
    assert due.breach_at == utc(2026, 11, 25, 8, 30)
    assert SlaPolicy().due(utc(2026, 11, 24, 9), "normal") is None


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration(15) == timedelta(minutes=15)
    assert parse_duration("2d") == timedelta(days=2)
    for bad in ("", "soon", "1x", "-5m", 0):
        with pytest.raises(DurationError):
            parse_duration(bad)
    assert format_duration(timedelta(minutes=125)) == "2 h 5 min"
    assert format_duration(timedelta(minutes=-12)) == "-12 min"
    assert format_duration(timedelta(days=3, hours=4)) == "3 d 4 h"


def test_config_builds_the_policy() -> None:
    config = parse_file_config({"sla": {
        "targets": {"urgent": "15m", "high": "1h", "normal": 240},
        "nudge_before": "10m",
        "business_hours": {"timezone": "Europe/Berlin", "days": ["Mon", "tue", "wed", "thu",
                                                                  "fri"],
                           "start": "09:00", "end": "17:00"},
    }})
    policy = config.sla.policy()
    assert policy.targets["normal"] == timedelta(hours=4)
    assert policy.nudge_before == timedelta(minutes=10)
    assert policy.hours is not None and policy.hours.days == WEEKDAYS
    assert config.sla.timezone == BERLIN
    assert not parse_file_config({}).sla.policy().enabled


def test_bad_sla_values_are_reported_with_their_location() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_file_config({"sla": {
            "targets": {"urgent": "soon", "asap": "1h"},
            "nudge_before": 3,
            "business_hours": {"timezone": "Mars/Olympus", "days": ["funday"],
                               "start": "25:00", "end": "17:00"},
        }}, origin="mentiondesk.toml")
    text = "\n".join(caught.value.problems)
    assert "mentiondesk.toml: sla.targets:" in text
    assert "sla.nudge_before:" in text
    assert "sla.business_hours.timezone: 'Mars/Olympus' is not an IANA time zone" in text
    assert "sla.business_hours.days:" in text
    assert "sla.business_hours.start: '25:00' is not a time of day" in text
    with pytest.raises(ConfigError, match="end must be later than start"):
        parse_file_config({"sla": {"business_hours": {"start": "18:00", "end": "09:00"}}})
