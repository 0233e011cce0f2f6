"""``--server URL``: a shot's chunks queued on a running ComfyUI instead of rendered here.

Each chunk's graph (pre-roll and ``write_frames`` set as for local chunks) is converted to
ComfyUI's API format (the chunk's frames as text: the one place they become text again) and
queued with ``POST /prompt``; ``GET /history/<id>`` is polled until it finishes. A refused
prompt or a failed execution comes back with the node and ComfyUI's message. Paths in the graph
are used by the server as they are: give absolute paths on storage that the server sees.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

from ..core.errors import error
from .graph import api_prompt
from .runner import node_classes
from .shot import Chunk, ShotBackend, ShotJob, ShotReport, chunk_graph
from .validate import validate_graph


def _request(url: str, payload: dict | None = None, timeout: float = 30.0) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _refusal(exc: urllib.error.HTTPError) -> str:
    """ComfyUI's 400 answer to a prompt it will not run, as one line per node error."""
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return f"HTTP {exc.code}"
    lines = [body.get("error", {}).get("message", f"HTTP {exc.code}")]
    for node_id, info in (body.get("node_errors") or {}).items():
        for err in info.get("errors", []):
            detail = f": {err['details']}" if err.get("details") else ""
            lines.append(f"node {node_id} ({info.get('class_type')}): {err.get('message')}{detail}")
    return "; ".join(lines)


def _execution_error(entry: dict) -> str:
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return (
                f"node {data.get('node_id')} ({data.get('node_type')}): "
                f"{data.get('exception_message', '').strip()}"
            )
    return "the server reports the prompt failed"


def run_chunk_on_server(url: str, graph, poll: float = 0.5, timeout: float = 24 * 3600) -> None:
    """Queue one chunk's graph and wait for it; a LatentmirrorError says what failed. The graph
    is validated here first (ComfyUI would not check NaN, output paths or frame ranges); its
    paths name the server's storage, so they are not looked up on this machine."""
    validate_graph(graph, node_classes(), local_paths=False)
    base = url.rstrip("/")
    try:
        queued = _request(
            f"{base}/prompt",
            {"prompt": api_prompt(graph, frames_as_text=True), "client_id": str(uuid.uuid4())},
        )
    except urllib.error.HTTPError as exc:
        raise error(f"the server refused the graph: {_refusal(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise error(f"cannot reach the ComfyUI server at {url} ({exc})") from None
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = _request(f"{base}/history/{prompt_id}")
        entry = history.get(prompt_id)
        if entry and entry.get("status", {}).get("completed", False):
            return
        if entry and entry.get("status", {}).get("status_str") == "error":
            raise error(_execution_error(entry))
        time.sleep(poll)
    raise error(f"prompt {prompt_id} did not finish within {timeout:.0f} s")


class ServerBackend(ShotBackend):
    """``--server URL``: every chunk on the server, in order. A failed chunk is reported and the
    others still run."""

    poll = 0.5  # seconds between looks at the server's history

    def render(
        self, job: ShotJob, chunks: list[Chunk], report: ShotReport, done: Callable[[Chunk], None]
    ) -> None:
        for chunk in chunks:
            try:
                graph = chunk_graph(job.graph, job.overrides, chunk)
                run_chunk_on_server(self.address, graph, self.poll)
                report.rendered.append(chunk)
            except Exception as exc:  # noqa: BLE001 - reported with the chunk's frames
                report.failed.append((chunk, str(exc)))
            done(chunk)
