"""The machine-readable MQTT contract, ``live/asyncapi.yaml`` (AsyncAPI 3.0), as a checker.

:func:`contract` reads the document once; :meth:`Contract.check` finds the channel a topic
belongs to (its ``address`` with the ``{parameters}`` as single topic levels) and validates
a payload against that channel's message schema (JSON Schema 2020-12, ``$ref`` resolved
within the document). The tests run every message of a live run through it, so the
document and the market cannot drift apart.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT = "asyncapi.yaml"


@dataclass(frozen=True)
class Channel:
    name: str
    pattern: re.Pattern[str]
    text: bool  # a plain-text payload (Tasmota's LWT), not JSON
    validator: Draft202012Validator


class Contract:
    """The channels of the AsyncAPI document and their payload validators."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        root = Resource.from_contents(document, default_specification=DRAFT202012)
        registry = Registry().with_resource("urn:p2pgrid:asyncapi", root)
        messages = document["components"]["messages"]
        self.channels: list[Channel] = []
        for name, channel in document["channels"].items():
            address = re.escape(channel["address"])
            address = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", address)
            (ref,) = (m["$ref"] for m in channel["messages"].values())
            key = ref.rsplit("/", 1)[-1]
            message = messages[key]
            schema = {"$ref": f"urn:p2pgrid:asyncapi#/components/messages/{key}/payload"}
            self.channels.append(
                Channel(
                    name,
                    re.compile(address + r"\Z"),
                    message.get("contentType") == "text/plain",
                    Draft202012Validator(schema, registry=registry),
                )
            )

    def channel(self, topic: str) -> Channel | None:
        """The channel ``topic`` belongs to, or None."""
        return next((c for c in self.channels if c.pattern.match(topic)), None)

    def check(self, topic: str, payload: bytes | str) -> list[str]:
        """What is wrong with ``payload`` on ``topic`` (empty when it follows the contract)."""
        channel = self.channel(topic)
        if channel is None:
            return [f"{topic}: no channel of {DOCUMENT} has this topic"]
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        try:
            data = text if channel.text else json.loads(text)
        except json.JSONDecodeError as exc:
            return [f"{topic}: not JSON ({exc})"]
        return [
            f"{topic} ({channel.name}): {'/'.join(map(str, e.absolute_path)) or '<root>'}: "
            f"{e.message}"
            for e in channel.validator.iter_errors(data)
        ]


@functools.cache
def contract() -> Contract:
    """The installed ``live/asyncapi.yaml``, parsed once per process."""
    text = resources.files("live").joinpath(DOCUMENT).read_text(encoding="utf-8")
    return Contract(yaml.safe_load(text))
