"""Submit a shot to OpenCue: one layer whose frames run in chunks, each chunk calling the
latentmirror CLI on its range (#FRAME_START# and #FRAME_END# are PyOutline's tokens).

Needs OpenCue's pyoutline/pycue configured for your show; edit SHOW, SHOT, paths and the range:
``python opencue_submit.py``. A task re-run after a crash skips frames already on disk.
"""

from outline import Outline, cuerun
from outline.modules.shell import Shell

SHOW, SHOT = "demo", "sq010_sh020"
GRAPH = "/shows/demo/sq010/sh020/comp/latentmirror/obscura.json"
LOGS = "/shows/demo/sq010/sh020/comp/latentmirror/logs"
FRAMES, CHUNK = "1001-1240", 24

command = [
    "/opt/latentmirror/.venv/bin/latentmirror", "render", GRAPH,
    "--frames=#FRAME_START#-#FRAME_END#", "--chunk", "8", "--preroll", "8",
    "--device", "cuda", "--log-json", f"{LOGS}/task_#FRAME_START#.jsonl",
]  # fmt: skip

job = Outline(f"{SHOT}_latentmirror", shot=SHOT, show=SHOW)
job.add_layer(Shell("latentmirror", command=command, range=FRAMES, chunk=CHUNK, threads=4))
cuerun.launch(job, use_pycuerun=False)
