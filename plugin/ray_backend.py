"""``--ray ADDRESS``: a shot's chunks as Ray tasks.

Each chunk that is not complete on disk becomes one task: one GPU per task where the cluster has
GPUs, one CPU otherwise. The worker renders the chunk headless (its pre-roll warms the start;
nothing carries between tasks) and writes the frames itself, so the output folder must be on
storage every node sees. The driver gathers progress as tasks finish; a task that fails is
retried (``retries``), then reported with its frame range.

``ADDRESS``: a cluster's address (``ray://head:10001`` or ``head:6379``), or ``auto`` to join the
local one or start it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..core.errors import error
from .shot import Chunk, ShotReport, start_shot

log = logging.getLogger("latentmirror")


def render_chunk_task(path: str, overrides: list[str], chunk: Chunk, device: str) -> list[str]:
    """What a Ray worker runs: the chunk rendered headless in the worker's process. Returns the
    chunk's JSON log lines."""
    import io

    from .headless import HeadlessHost
    from .host import set_host
    from .shot import render_chunk

    set_host(HeadlessHost(device=device, show_progress=False))
    stream = io.StringIO()
    render_chunk(path, overrides, chunk, stream)
    return stream.getvalue().splitlines()


def _connect(address: str):
    try:
        import ray
    except ImportError:
        raise error(
            "--ray needs Ray: pip install 'latentmirror[ray]' (or pip install ray)"
        ) from None
    if not ray.is_initialized():
        if address == "auto":
            try:
                ray.init(address="auto", log_to_driver=False)
            except (ConnectionError, RuntimeError):  # no local cluster yet: start one
                ray.init(log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


def render_shot_on_ray(
    address: str,
    path: str,
    frames: str | None,
    overrides,
    chunk_size: int,
    preroll: int,
    progress: Callable[[int, int], None] | None = None,
    retries: int = 1,
) -> ShotReport:
    from .host import current_host

    chunks, report, count_done = start_shot(
        path, frames, overrides, chunk_size, preroll, current_host(), progress
    )
    todo = [chunk for chunk in chunks if chunk not in report.skipped]
    if not todo:
        return report

    ray = _connect(address)
    gpus = ray.cluster_resources().get("GPU", 0)
    resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    device = "cuda" if gpus else "cpu"
    task = ray.remote(max_retries=retries, retry_exceptions=True, **resources)(render_chunk_task)
    pending = {task.remote(path, list(overrides), c, device): c for c in todo}
    log.info("%d chunks on Ray (%s per task)", len(pending), "1 GPU" if gpus else "1 CPU")
    while pending:
        finished, _ = ray.wait(list(pending), num_returns=1)
        for ref in finished:
            chunk = pending.pop(ref)
            try:
                report.log_lines += ray.get(ref)
                report.rendered.append(chunk)
            except Exception as exc:  # noqa: BLE001 - after the retries: report with its frames
                report.failed.append((chunk, _cause(exc)))
            count_done(chunk)
    return report


def _cause(exc: Exception) -> str:
    """The worker's own exception message, not Ray's wrapper and traceback."""
    cause = getattr(exc, "cause", None)
    return str(cause) if cause is not None else str(exc).strip().splitlines()[-1]
