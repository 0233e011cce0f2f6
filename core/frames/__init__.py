"""Frame sequences on disk: patterns, Nuke-style ranges, OpenEXR reading and writing."""

from .patterns import SequencePattern, parse_pattern
from .ranges import format_frame_ranges, parse_frame_range

__all__ = ["SequencePattern", "parse_pattern", "parse_frame_range", "format_frame_ranges"]
