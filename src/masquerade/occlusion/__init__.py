"""Occlusion: what is in front of a face — synthetic occluders with exact masks (benchmarks, training)."""

from .synthetic import OCCLUDER_KINDS, OccluderLayer, make_occluder, parse_occluder

__all__ = ["OCCLUDER_KINDS", "OccluderLayer", "make_occluder", "parse_occluder"]
