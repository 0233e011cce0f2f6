"""``render --server``: chunks queued on a ComfyUI-like server over HTTP.

ComfyUI itself is not on PyPI; the stand-in below speaks the part of its HTTP API the client
uses (POST /prompt with 400 + node_errors for a graph it refuses, GET /history/<id> with
status and execution_error) and executes prompts with the pack's own nodes.
"""

from __future__ import annotations

import glob
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from latentmirror.core.errors import LatentmirrorError
from latentmirror.plugin.cli import main
from latentmirror.plugin.graph import from_api_format
from latentmirror.plugin.runner import node_classes, run_graph

from .support import IDENTITY, frames_on_disk, overrides

pytestmark = pytest.mark.slow  # every test renders a shot through a server


class StandIn(BaseHTTPRequestHandler):
    history: dict = {}
    prompts: list = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["prompt"]
        unknown = {k: v for k, v in prompt.items() if v["class_type"] not in node_classes()}
        if unknown:
            errors = {k: {"class_type": v["class_type"], "errors": [
                {"message": "Node type not found", "details": v["class_type"]}]}
                for k, v in unknown.items()}  # fmt: skip
            return self._send(400, {"error": {"message": "Prompt outputs failed validation"},
                                    "node_errors": errors})  # fmt: skip
        prompt_id = str(uuid.uuid4())
        self.prompts.append(prompt)
        try:
            run_graph(from_api_format(prompt), node_classes())
            status = {"status_str": "success", "completed": True, "messages": []}
        except LatentmirrorError as exc:
            message = ["execution_error", {"node_id": "7", "node_type": "LM_Invert",
                                           "exception_message": str(exc)}]  # fmt: skip
            status = {"status_str": "error", "completed": False, "messages": [message]}
        self.history[prompt_id] = {"status": status, "outputs": {}}
        self._send(200, {"prompt_id": prompt_id, "number": len(self.prompts)})

    def do_GET(self):  # noqa: N802
        prompt_id = self.path.rsplit("/", 1)[-1]
        entry = self.history.get(prompt_id)
        self._send(200, {prompt_id: entry} if entry else {})


@pytest.fixture
def server():
    StandIn.history, StandIn.prompts = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _args(plate, out, server, *extra):
    sets = sum((["--set", s] for s in overrides(plate, out)), [])
    return ["render", IDENTITY, *sets, "--server", server, "--quiet", *extra]


def test_chunks_are_queued_in_api_format_and_write_the_shot(
    headless_host, server, shot_plate, tmp_path, capsys
):
    out = str(tmp_path / "out" / "srv.####.exr")
    assert main(_args(shot_plate, out, server, "--chunk", "4", "--preroll", "2")) == 0
    assert frames_on_disk(out) == list(range(1001, 1009))
    assert len(StandIn.prompts) == 2
    second = StandIn.prompts[1]
    assert second["1"]["inputs"]["frames"] == "1003-1008"  # pre-roll 1003-1004
    assert second["10"]["inputs"]["write_frames"] == "1005-1008"
    assert second["7"]["inputs"]["model"] == ["3", 0]  # links as ComfyUI's API format has them
    assert "2 succeeded, 0 failed" in capsys.readouterr().out
    # everything complete on disk: nothing is queued again
    assert main(_args(shot_plate, out, server, "--chunk", "4")) == 0
    assert len(StandIn.prompts) == 2


def test_server_errors_come_back_with_node_and_message(
    headless_host, server, shot_plate, tmp_path, capsys
):
    out = str(tmp_path / "bad" / "b.####.exr")
    code = main(_args(shot_plate, out, server, "--set", "7.fit=tiles", "--chunk", "4"))
    err = capsys.readouterr().err
    assert code == 1
    assert "chunk 1001-1004: node 7 (LM_Invert)" in err and "at least as large as the model" in err
    assert not glob.glob(str(tmp_path / "bad" / "*.exr"))
    unreachable = main(_args(shot_plate, out, "http://127.0.0.1:9", "--chunk", "8"))
    assert unreachable == 1 and "cannot reach the ComfyUI server" in capsys.readouterr().err
