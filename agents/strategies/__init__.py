"""Bidding strategies, vectorised over households."""
