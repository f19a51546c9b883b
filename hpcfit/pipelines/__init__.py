"""Workload pipelines: stage calls in data-flow order."""
