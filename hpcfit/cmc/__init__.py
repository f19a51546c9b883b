"""Consensus Monte Carlo: shard plan, per-shard posteriors, gates and combination."""
