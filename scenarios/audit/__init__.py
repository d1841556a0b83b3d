"""Trust without a trusted server: the exact bytes that are signed and hashed
(:mod:`.canonical`), Ed25519 keys and signatures (:mod:`.keys`), Merkle trees and
inclusion proofs (:mod:`.merkle`), and the tamper-evident ledger that batch runs and
the live market write and anyone can verify."""
