"""``--server URL``: a shot's chunks queued on a running ComfyUI instead of rendered here.

Each chunk's graph (pre-roll and ``write_frames`` set as for local chunks) is converted to
ComfyUI's API format and queued with ``POST /prompt``; ``GET /history/<id>`` is polled until it
finishes. A refused prompt or a failed execution comes back with the node and ComfyUI's
message. Paths in the graph are used by the server as they are: give absolute paths on storage
that the server sees.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

from ..core.errors import error
from .graph import GraphNode
from .shot import ShotReport, chunk_graph, start_shot


def api_prompt(graph: dict[str, GraphNode]) -> dict:
    """ComfyUI's API format: ``{id: {"class_type", "inputs"}}``, links as ``[node id, slot]``."""
    return {
        node_id: {"class_type": node.class_type, "inputs": dict(node.inputs)}
        for node_id, node in graph.items()
    }


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
    """Queue one chunk's graph and wait for it; a LatentmirrorError says what failed."""
    base = url.rstrip("/")
    try:
        queued = _request(
            f"{base}/prompt", {"prompt": api_prompt(graph), "client_id": str(uuid.uuid4())}
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


def render_shot_on_server(
    url: str,
    path: str,
    frames: str | None,
    overrides,
    chunk_size: int,
    preroll: int,
    progress: Callable[[int, int], None] | None = None,
    poll: float = 0.5,
) -> ShotReport:
    """Every chunk on the server, in order; chunks complete on disk (as seen here) are skipped.
    A failed chunk is reported and the others still run."""
    from .host import current_host

    chunks, report, count_done = start_shot(
        path, frames, overrides, chunk_size, preroll, current_host(), progress
    )
    for chunk in chunks:
        if chunk in report.skipped:
            continue
        try:
            run_chunk_on_server(url, chunk_graph(path, overrides, chunk), poll)
            report.rendered.append(chunk)
        except Exception as exc:  # noqa: BLE001 - reported with the chunk's frames
            report.failed.append((chunk, str(exc)))
        count_done(chunk)
    return report
