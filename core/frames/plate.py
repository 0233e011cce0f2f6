"""PLATE_INFO: what travels beside the IMAGE so that a saver can write frames like the plate's."""

from __future__ import annotations

from dataclasses import dataclass, field

from .exr import Attribute, Box


@dataclass
class PlateInfo:
    """Frame numbers, windows, header attributes and colour of a loaded plate.

    The IMAGE covers ``canvas``: the display window grown to hold every frame's data window, so
    overscan is kept and every frame has the same size. Per-frame lists are in IMAGE batch order.
    """

    pattern: str
    frames: list[int]
    source_paths: list[str | None]  # None for a frame filled with black
    frame_status: list[str]  # "read", "held from 1004", "black"
    canvas: Box
    display_window: Box
    data_windows: list[Box]
    attributes: list[list[Attribute]]
    colorspace: str
    ocio_config: str
    channels: list[str]
    has_alpha: bool
    pixel_type: str
    compression: str
    layer: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def select(self, indices: list[int]) -> PlateInfo:
        """The plate info of some frames (batch positions), per-frame lists picked alike."""
        from dataclasses import replace

        def pick(values: list) -> list:
            return [values[i] for i in indices]

        return replace(
            self,
            frames=pick(self.frames),
            source_paths=pick(self.source_paths),
            frame_status=pick(self.frame_status),
            data_windows=pick(self.data_windows),
            attributes=pick(self.attributes),
        )

    def summary(self) -> str:
        from .ranges import format_frame_ranges

        return (
            f"{self.pattern} frames {format_frame_ranges(self.frames)} "
            f"({len(self.frames)}), {self.display_window.width}x{self.display_window.height}, "
            f"{self.colorspace}"
        )
