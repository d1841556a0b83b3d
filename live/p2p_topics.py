"""The decentralised p2p market's peer topic (``p2pgrid live --decentralised``, issue 17
item 3): household ``sender`` publishes its proposal to partner ``receiver`` on
``p2pgrid/<community>/peers/<sender>/<receiver>``. The ACL (:mod:`live.acl`) lets a
household publish only ``peers/<itself>/+`` and read only ``peers/+/<itself>``.
"""

from __future__ import annotations

from live.protocol import Topics


def peers_topic(topics: Topics, sender: str, receiver: str) -> str:
    """The topic of ``sender``'s proposals to ``receiver`` (MQTT wildcards allowed)."""
    return f"{topics.root}/peers/{sender}/{receiver}"
