"""The transport's compiled topic matcher agrees with paho's ``topic_matches_sub``."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st

from live.bus import topic_matcher

LEVEL = st.sampled_from(["a", "b", "", "$SYS", "agents", "h0001", "reading"])
PATTERN_LEVEL = st.sampled_from(["a", "b", "", "+", "$SYS", "agents", "reading"])


@st.composite
def patterns(draw: st.DrawFn) -> str:
    levels = draw(st.lists(PATTERN_LEVEL, min_size=0, max_size=4))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    return "/".join(levels)


@settings(max_examples=400, deadline=None)
@given(
    pattern=st.one_of(patterns(), st.lists(PATTERN_LEVEL, min_size=1, max_size=4).map("/".join)),
    topic=st.lists(LEVEL, min_size=1, max_size=5).map("/".join),
)
def test_topic_matcher_equals_paho(pattern: str, topic: str) -> None:
    assert topic_matcher(pattern)(topic) == mqtt.topic_matches_sub(pattern, topic)


def test_market_subscriptions() -> None:
    reading = topic_matcher("p2pgrid/c/agents/+/reading")
    assert reading("p2pgrid/c/agents/h0001/reading")
    assert not reading("p2pgrid/c/agents/h0001/orders")
    assert not reading("p2pgrid/c/agents/h0001/reading/x")
    assert not reading("p2pgrid/d/agents/h0001/reading")
    meters = topic_matcher("p2pgrid/c/meters/#")
    assert meters("p2pgrid/c/meters/tasmota/m1/tele/SENSOR")
    assert meters("p2pgrid/c/meters")
    assert not meters("p2pgrid/c/metersx/a")
