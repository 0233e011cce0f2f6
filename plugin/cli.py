"""The ``latentmirror`` command: ``render`` a graph headless, ``info`` about a file or sequence."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
import traceback

from .. import __version__
from ..core.errors import LatentmirrorError, error
from .backends import DEFAULT_PREROLL, SHOT_BACKENDS

# A user's mistake (a bad flag, graph, file or frame) exits 1 with "latentmirror: error: ...";
# anything else escaping is a bug in latentmirror, reported in one line (--debug: the traceback).
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INTERNAL = 0, 1, 130, 70  # 70: EX_SOFTWARE


class _Parser(argparse.ArgumentParser):
    """argparse, with its refusals worded and numbered as every other user mistake."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILED, f"latentmirror: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="latentmirror", description="GAN-inversion video manipulation for compositors."
    )
    parser.add_argument("--version", action="version", version=f"latentmirror {__version__}")
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="on an internal error, print the full traceback",
    )  # fmt: skip
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)

    render = commands.add_parser(
        "render", help="run a graph headless (API or UI format)", parents=[debug]
    )
    render.add_argument("graph", help="graph JSON saved from ComfyUI (UI or API format)")
    render.add_argument(
        "--frames",
        type=_frame_range_arg,
        help="frame range for every Load EXR Sequence: 1001-1240, 1001-1240x2, 1-10y3, 1-10:2, "
        "1001,1005,1010-1020, -2-0",
    )
    render.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE_ID.INPUT=VALUE",
        help="set a node input (repeatable)",
    )
    render.add_argument("--models-dir", help="folder holding gan/ (default: ./models)")
    render.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1")
    render.add_argument("--quiet", action="store_true", help="no progress bars")
    render.add_argument(
        "--roots", metavar="DIR[:DIR...]",
        help="nodes read and write only inside these folders (os.pathsep-separated), as in a "
        "shared ComfyUI; default: anywhere",
    )  # fmt: skip
    render.add_argument(
        "--chunk", type=_whole_number_arg(1), default=None, metavar="N",
        help="render the shot N frames at a time (memory follows N, not the shot's length); "
        "chunks whose frames are up to date on disk are skipped, so a killed render resumes",
    )  # fmt: skip
    render.add_argument(
        "--preroll", type=_whole_number_arg(0), default=None, metavar="K",
        help="frames before each chunk that are solved but not written, so warm starts stay "
        f"continuous (default {DEFAULT_PREROLL} with --chunk)",
    )  # fmt: skip
    for name, backend in SHOT_BACKENDS.items():
        if backend.option:
            render.add_argument(
                backend.option, dest=name, metavar=backend.metavar, help=backend.help
            )
    render.add_argument(
        "--log-json", metavar="FILE",
        help="one JSON line per written frame (frame, seconds, loss, output); - for stdout",
    )  # fmt: skip

    info = commands.add_parser(
        "info", help="describe an EXR, a sequence or a GAN model file", parents=[debug]
    )
    info.add_argument("file", help="an EXR file, a sequence pattern (plate.####.exr), or a model")

    convert = commands.add_parser(
        "convert-model",
        help="convert a .pkl/.pt/.safetensors model to our .safetensors form",
        parents=[debug],
    )
    convert.add_argument("source", help="NVlabs .pkl, rosinality .pt or .safetensors")
    convert.add_argument("target", help="output .safetensors")
    convert.add_argument("--dtype", choices=["float16", "float32"], default="float32")
    convert.add_argument("--no-discriminator", action="store_true", help="leave D out")
    return parser


def _frame_range_arg(text: str) -> str:
    """``--frames``: read at once (a typo is refused before anything loads), at most
    `core.frames.ranges.MAX_FRAMES` frames; kept as typed for the graph's loaders."""
    from ..core.frames import parse_frame_range

    try:
        parse_frame_range(text)
    except LatentmirrorError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _whole_number_arg(minimum: int):
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {number}")
        return number

    return parse


def _attach_frames_value(argv: list[str]) -> list[str]:
    """``--frames -2-0`` as ``--frames=-2-0``: argparse takes a value starting with ``-`` for an
    option unless it looks like a plain negative number, so a range of negative frames (and a
    farm task's ``--frames <START>-<END>`` when the shot starts below 0) would be refused."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--frames" and re.match(r"-\d", arg):
            out[-1] = f"--frames={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(_attach_frames_value(argv))
    logging.basicConfig(
        level=logging.INFO, format="[latentmirror] %(levelname)s %(message)s", stream=sys.stderr
    )
    try:
        return _run_command(args)
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"latentmirror: internal error: {type(exc).__name__}: {message} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _run_command(args) -> int:
    try:
        if args.command == "render":
            return _render(args)
        if args.command == "convert-model":
            return _convert_model(args)
        from .info import describe

        print(describe(args.file))
        return EXIT_OK
    except LatentmirrorError as exc:
        interrupted = type(exc).__name__ == "Interrupted"
        print(f"latentmirror: error: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted else EXIT_FAILED
    except KeyboardInterrupt:
        print("latentmirror: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _render(args) -> int:
    from ..host import set_host
    from .headless import HeadlessHost
    from .runner import run_graph_file

    _check_device(args.device)
    _check_log_target(args.log_json)
    roots = [r for r in args.roots.split(os.pathsep) if r] if args.roots is not None else None
    host = HeadlessHost(
        device=args.device,
        models_dir=args.models_dir,
        show_progress=False if args.quiet else None,
        roots=roots,
    )
    set_host(host)
    host.install_interrupt_handler()
    backend = _chosen_backend(args)
    if roots is not None and backend is not None and backend.where is not None:
        raise LatentmirrorError(  # its workers or server do not get them: say so, not ignore
            f"--roots applies to renders on this machine, not on {backend.where}; a ComfyUI "
            "server has its own (LATENTMIRROR_ROOTS there)"
        )
    if backend or args.chunk is not None or args.log_json:
        return _render_shot(args, host, backend)
    started = time.perf_counter()
    report = run_graph_file(args.graph, args.frames, args.overrides)
    seconds = time.perf_counter() - started
    print(
        f"rendered {args.graph}: {len(report.executed)} nodes, {len(report.files)} files "
        f"written, {len(report.skipped_files)} kept up to date, {seconds:.1f} s"
    )
    for path in (
        report.files[:3]
        + (["..."] if len(report.files) > 4 else [])
        + (report.files[-1:] if len(report.files) > 3 else [])
    ):
        print(f"  {path}")
    for path in report.plots:
        print(f"loss plot: {path}")
    return EXIT_OK


def _chosen_backend(args):
    """The shot backend whose option was given (--server over --ray: the later entry), or None."""
    chosen = None
    for name, entry in SHOT_BACKENDS.items():
        if entry.option and getattr(args, name):
            chosen = entry.load()(getattr(args, name))
    return chosen


def _render_shot(args, host, backend) -> int:
    """``--chunk``, ``--log-json``, or a backend's option: the shot in chunks, here or there."""
    from .runner import node_classes
    from .shot import ShotJob, graph_with_overrides, open_log, refuse_whole_shot_nodes, render_shot
    from .validate import validate_graph

    backend = backend or SHOT_BACKENDS["local"].load()()
    # checked before the log file is made (render_shot checks again, for other callers)
    graph = graph_with_overrides(args.graph, args.overrides)
    validate_graph(graph, node_classes(), local_paths=backend.where is None)
    refuse_whole_shot_nodes(graph)
    log_json = open_log(args.log_json)
    summary = sys.stderr if log_json is sys.stdout else sys.stdout  # stdout: JSON lines only
    job = ShotJob(
        args.graph, args.frames, tuple(args.overrides), args.chunk or 10**9,
        DEFAULT_PREROLL if args.preroll is None else args.preroll, log_json,
    )  # fmt: skip
    bar, progress = _shot_bar(host)
    try:
        report = render_shot(job, backend, progress)
    finally:
        bar.close()
        if log_json not in (None, sys.stdout):
            log_json.close()
    for failed, message in report.failed:
        print(f"latentmirror: error: chunk {failed.label()}: {message}", file=sys.stderr)
    if backend.where is None:  # rendered here
        print(
            f"rendered {args.graph}: {report.chunks} chunks ({len(report.rendered)} rendered, "
            f"{len(report.skipped)} up to date on disk), {len(report.files)} files written, "
            f"{report.seconds:.1f} s",
            file=summary,
        )
        for path in dict.fromkeys(report.plots):
            print(f"loss plot: {path}", file=summary)
    else:
        print(
            f"rendered {args.graph} on {backend.where}: {report.chunks} chunks "
            f"({len(report.rendered)} succeeded, {len(report.failed)} failed, "
            f"{len(report.skipped)} up to date on disk)",
            file=summary,
        )
    return EXIT_FAILED if report.failed else EXIT_OK


def _check_device(name: str) -> None:
    """``--device``, checked before anything loads: a device torch knows and this machine has."""
    import torch

    available = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        available.append("mps")
    if name in ("", "auto"):
        return
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    known = device is not None and (
        device.type == "cpu"
        or (device.type == "cuda" and (device.index or 0) < torch.cuda.device_count())
        or (device.type == "mps" and "mps" in available)
    )
    if not known:
        raise error(
            f"--device {name}: no such device here; available: auto, {', '.join(available)}"
        )


def _check_log_target(target: str | None) -> None:
    """``--log-json FILE``: a file that can be appended to (not a folder), checked before the
    render so a long render never ends unable to log."""
    if not target or target == "-":
        return
    path = os.path.abspath(target)
    if os.path.isdir(path):
        raise error("--log-json names a folder; give a file such as render.jsonl", file=target)
    folder = os.path.dirname(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise error(f"--log-json cannot be made: {folder} is a file, not a folder", file=target)
    writable = os.access(path, os.W_OK) if os.path.exists(path) else os.access(folder, os.W_OK)
    if not writable:
        raise error("--log-json cannot be written (permission denied)", file=target)


def _shot_bar(host):
    """A bar for the whole shot (frames, with an ETA) and its update callback."""
    from tqdm import tqdm

    bar = tqdm(desc="shot", unit="frame", file=sys.stderr, disable=host.quiet_progress)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, progress


def _convert_model(args) -> int:
    import torch

    from ..core.gan import load_gan, save_safetensors
    from .info import describe_model

    model = load_gan(args.source)
    if args.no_discriminator:
        model.discriminator = None
    save_safetensors(model, args.target, dtype=getattr(torch, args.dtype))
    print(f"converted {args.source} -> {args.target}")
    print(describe_model(args.target))
    return EXIT_OK
