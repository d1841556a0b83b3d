"""The audit primitives against independent references: RFC 8785's own examples,
RFC 8032's Ed25519 test vector, and Merkle roots worked by hand with hashlib."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scenarios.audit import merkle
from scenarios.audit.canonical import CanonicalError, canonical, digest
from scenarios.audit.keys import KeyError_, KeyPair, Registry, SignatureError


def test_canonical_bytes_follow_rfc8785():
    # RFC 8785 §3.2.2: sorted keys, no whitespace, ECMAScript numbers
    assert canonical({"b": 1.0, "a": [1e21, 0.1, -0.0, 4.5e-7], "c": "é"}) == (
        '{"a":[1e+21,0.1,0,4.5e-7],"b":1,"c":"é"}'.encode()
    )
    # key order and whitespace of the sender do not matter
    assert digest({"t": 1, "x": 2.5}) == digest({"x": 2.5, "t": 1})
    assert digest({"t": 1}) == hashlib.sha256(b'{"t":1}').hexdigest()
    with pytest.raises(CanonicalError):
        canonical({"x": float("nan")})


def test_ed25519_matches_rfc8032_vector_1():
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pair = KeyPair("k", Ed25519PrivateKey.from_private_bytes(seed))
    public = base64.b64decode(pair.public_b64).hex()
    assert public == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    sig = base64.b64decode(pair.sign_bytes(b"")).hex()
    assert sig == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_signed_payload_round_trip_and_every_rejection(tmp_path):
    alice, bob = KeyPair.new("h0001"), KeyPair.new("h0002")
    reg = Registry({"h0001": alice.public_b64, "h0002": bob.public_b64})
    signed = alice.sign({"v": 1, "t": 3, "demand_kwh": 0.25})
    reg.verify(signed, "h0001")
    # the bytes signed are canonical: another key order verifies too
    reg.verify(dict(reversed(list(signed.items()))), "h0001")
    cases = {
        "unsigned": ({"v": 1, "t": 3}, "h0001"),
        "does not verify": ({**signed, "demand_kwh": 0.26}, "h0001"),
        "expected 'h0002'": (signed, "h0002"),  # alice's payload on bob's topic
        "no public key": (KeyPair.new("h0009").sign({"t": 1}), "h0009"),
        "malformed": ({**signed, "sig": {**signed["sig"], "value": "!!"}}, "h0001"),
    }
    for words, (payload, who) in cases.items():
        with pytest.raises(SignatureError, match=words):
            reg.verify(payload, who)
    # key files
    alice.save(tmp_path / "h0001.key")
    assert (tmp_path / "h0001.key").stat().st_mode & 0o777 == 0o600
    again = KeyPair.load(tmp_path / "h0001.key")
    reg.verify(again.sign({"t": 4}), "h0001")
    reg.save(tmp_path / "keys.json")
    assert Registry.load(tmp_path / "keys.json").public_b64("h0002") == bob.public_b64
    (tmp_path / "bad.key").write_text('{"alg": "RSA"}')
    with pytest.raises(KeyError_, match=r"bad\.key"):
        KeyPair.load(tmp_path / "bad.key")


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def test_merkle_root_by_hand_and_proofs_bind_the_position():
    a, b, c = (_h(b"\x00", x) for x in (b"a", b"b", b"c"))
    assert merkle.leaf_hash(b"a") == a
    # three leaves: (a, b) paired, c carried up unchanged
    assert merkle.root([a, b, c]) == _h(b"\x01", _h(b"\x01", a, b), c)
    assert merkle.root([a]) == a
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    for n in range(1, 34):
        leaves = [merkle.leaf_hash(bytes([i])) for i in range(n)]
        top = merkle.root(leaves)
        for i in range(n):
            path = merkle.proof(leaves, i)
            assert merkle.verify(leaves[i], i, n, path, top)
            if n > 1:  # the same path does not prove another position or leaf
                assert not merkle.verify(leaves[i], (i + 1) % n, n, path, top)
                assert not merkle.verify(leaves[(i + 1) % n], i, n, path, top)
            assert not merkle.verify(leaves[i], i, n, [*path, top], top)
