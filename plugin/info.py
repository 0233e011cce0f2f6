"""``latentmirror info``: an EXR's header, or a sequence's summary."""

from __future__ import annotations

from ..core.errors import LatentmirrorError, error
from ..core.frames import format_frame_ranges, parse_pattern
from ..core.frames.exr import ExrHeader, read_headers
from ..core.storage import require_regular_file
from ..host import MODEL_EXTENSIONS


def describe(target: str) -> str:
    if target.lower().endswith(MODEL_EXTENSIONS["gan"]):
        return describe_model(target)
    pattern = parse_pattern(target)
    if pattern.is_single_file:
        require_regular_file(target, "file")
        return describe_file(target)
    return describe_sequence(target)


def describe_file(path: str) -> str:
    lines = [f"file: {path}"]
    for header in read_headers(path):
        if header.subimage:
            lines.append(f"part {header.subimage}:")
        lines += _header_lines(header)
        lines.append("attributes:")
        for attribute in sorted(header.attributes, key=lambda a: a.name.lower()):
            lines.append(f"  {attribute.name} ({attribute.type}): {attribute.value!r}")
    return "\n".join(lines)


def _header_lines(header: ExrHeader) -> list[str]:
    d, w = header.display_window, header.data_window
    channels = ", ".join(
        f"{n} ({t})" for n, t in zip(header.channels, header.channel_types, strict=True)
    )
    return [
        f"size: {d.width}x{d.height}",
        f"display window: {d}",
        f"data window: {w}" + ("" if w == d else f"  ({w.width}x{w.height})"),
        f"channels: {channels}",
        f"compression: {header.compression}",
    ]


def describe_sequence(text: str) -> str:
    pattern = parse_pattern(text)
    found = pattern.frames_on_disk()
    if not found:
        raise error(f"no frames on disk match '{pattern.display()}'")
    frames = list(found)
    gaps = [f for f in range(frames[0], frames[-1] + 1) if f not in found]
    sizes, channels, compressions, types, unreadable = {}, {}, {}, {}, []
    for frame, path in found.items():
        try:
            header = read_headers(path)[0]
        except LatentmirrorError as exc:
            unreadable.append(f"{frame} ({exc.message})")
            continue
        d = header.display_window
        _count(sizes, f"{d.width}x{d.height}", frame)
        _count(channels, ", ".join(header.channels), frame)
        _count(compressions, header.compression, frame)
        _count(types, header.pixel_type, frame)
    lines = [
        f"sequence: {pattern.display()}",
        f"frames: {format_frame_ranges(frames)} ({len(frames)} on disk, first {frames[0]}, "
        f"last {frames[-1]})",
        f"gaps: {format_frame_ranges(gaps) if gaps else 'none'}",
    ]
    for label, values in (
        ("size", sizes),
        ("channels", channels),
        ("pixel type", types),
        ("compression", compressions),
    ):
        lines.append(
            f"{label}: "
            + "; ".join(
                v if len(values) == 1 else f"{v} (frames {format_frame_ranges(f)})"
                for v, f in values.items()
            )
        )
    if unreadable:
        lines.append("unreadable: " + "; ".join(unreadable))
    return "\n".join(lines)


def _count(table: dict, value: str, frame: int) -> None:
    table.setdefault(value, []).append(frame)


# What architecture["format"] means, for people.
_FORMAT_NAMES = {
    "nvlabs-pickle": "NVlabs PyTorch network pickle",
    "tensorflow-pickle": "TensorFlow StyleGAN2 pickle (read as data; its code is never run)",
    "rosinality": "rosinality stylegan2-pytorch checkpoint",
    "safetensors": "latentmirror .safetensors",
}


def _architectures(arch: dict) -> str:
    """'generator skip, discriminator resnet' from the networks' init kwargs."""
    g_kwargs = arch["generator"].get("kwargs", {})
    g = (g_kwargs.get("synthesis_kwargs") or {}).get("architecture", g_kwargs.get("architecture"))
    d = (arch.get("discriminator") or {}).get("kwargs", {}).get("architecture")
    return f"generator {g or '-'}, discriminator {d or '-'}"


def describe_model(path: str) -> str:
    """Architecture, resolution, num_ws, parameter counts and content hash of a GAN file."""
    from ..core.gan import load_gan

    model = load_gan(path)
    arch = model.architecture
    generator = arch["generator"]
    discriminator = arch.get("discriminator")
    lines = [
        f"model: {path}",
        f"kind: {model.kind} ({arch.get('format', '?')})",
        f"format: {_FORMAT_NAMES.get(arch.get('format'), arch.get('format', '?'))}",
        f"architecture: {_architectures(arch)}",
        f"resolution: {model.resolution}x{model.resolution}, {model.img_channels} channels",
        f"z_dim: {model.z_dim}, w_dim: {model.w_dim}, num_ws: {model.num_ws}, c_dim: {model.c_dim}",
        f"generator: {generator['class']}, {model.parameter_count():,} parameters",
        "discriminator: "
        + (
            f"{discriminator['class']}, "
            f"{model.parameter_count(True) - model.parameter_count():,} parameters"
            if model.discriminator is not None and discriminator
            else "none"
        ),
        f"dtype: {str(model.dtype).replace('torch.', '')}",
        f"sha256: {model.content_hash}",
    ]
    kwargs = ", ".join(f"{k}={v!r}" for k, v in sorted(generator.get("kwargs", {}).items()))
    lines.append(f"generator kwargs: {kwargs}")
    return "\n".join(lines)
