"""``--ray ADDRESS``: a shot's chunks as Ray tasks.

Each chunk that is not up to date on disk becomes one task: one GPU per task where the cluster has
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
from ..host import set_host
from .headless import HeadlessHost
from .local_backend import render_chunk
from .shot import Chunk, ShotBackend, ShotJob, ShotReport

log = logging.getLogger("latentmirror")


def render_chunk_task(path: str, overrides: list[str], chunk: Chunk, device: str) -> list[str]:
    """What a Ray worker runs: the chunk rendered headless in the worker's process. Returns the
    chunk's JSON log lines."""
    import io

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


class RayBackend(ShotBackend):
    """``--ray ADDRESS``: one Ray task per chunk (see the module docstring)."""

    retries = 1  # a failed task runs again this many times before it is reported

    @property
    def where(self) -> str:
        return "Ray"

    def render(
        self, job: ShotJob, chunks: list[Chunk], report: ShotReport, done: Callable[[Chunk], None]
    ) -> None:
        ray = _connect(self.address)
        gpus = ray.cluster_resources().get("GPU", 0)
        resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        device = "cuda" if gpus else "cpu"
        task = ray.remote(max_retries=self.retries, retry_exceptions=True, **resources)(
            render_chunk_task
        )
        pending = {task.remote(job.graph, list(job.overrides), c, device): c for c in chunks}
        log.info("%d chunks on Ray (%s per task)", len(pending), "1 GPU" if gpus else "1 CPU")
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for ref in finished:
                chunk = pending.pop(ref)
                try:
                    lines = ray.get(ref)
                    report.rendered.append(chunk)
                except Exception as exc:  # noqa: BLE001 - after the retries: with its frames
                    report.failed.append((chunk, _cause(exc)))
                else:
                    _write_lines(job.log_json, lines)
                done(chunk)


def _write_lines(log_json, lines: list[str]) -> None:
    """A worker's JSON log lines into ``--log-json`` as its chunk finishes."""
    if log_json is not None:
        log_json.write("".join(line + "\n" for line in lines))
        log_json.flush()


def _cause(exc: Exception) -> str:
    """The worker's own exception message, not Ray's wrapper and traceback."""
    cause = getattr(exc, "cause", None)
    return str(cause) if cause is not None else str(exc).strip().splitlines()[-1]
