"""Submit a shot to OpenCue: one layer whose frames run in chunks, each chunk calling the
latentmirror CLI on its range (#FRAME_START# and #FRAME_END# are PyOutline's tokens).

Needs OpenCue's pyoutline/pycue configured for your show; edit SHOW, SHOT, paths and the range:
``python opencue_submit.py``. A task re-run after a crash skips frames already on disk.
"""

from fileseq import FrameSet
from outline import Outline, cuerun
from outline.modules.shell import Shell

SHOW, SHOT = "demo", "sq010_sh020"
GRAPH = "/shows/demo/sq010/sh020/comp/latentmirror/obscura.json"
LOGS = "/shows/demo/sq010/sh020/comp/latentmirror/logs"
FRAMES, CHUNK = "1001-1240", 24  # or a stepped range such as 1001-1240x2


def task_frames(frames: str) -> str:
    """Each task's frames for the CLI. A task's first and last frame lie on the layer's step, so
    START-END with that step names exactly the task's frames (without it, 1001-1240x2 would also
    render the frames in between). One evenly stepped range per layer."""
    numbers = list(FrameSet(frames))
    steps = {b - a for a, b in zip(numbers, numbers[1:], strict=False)}
    if len(steps) > 1:
        raise SystemExit(f"{frames}: one evenly stepped range per layer (add a layer per range)")
    step = steps.pop() if steps else 1
    return "#FRAME_START#-#FRAME_END#" + (f"x{step}" if step > 1 else "")


command = [
    "/opt/latentmirror/.venv/bin/latentmirror", "render", GRAPH,
    f"--frames={task_frames(FRAMES)}", "--chunk", "8", "--preroll", "8",
    "--device", "cuda", "--log-json", f"{LOGS}/task_#FRAME_START#.jsonl",
]  # fmt: skip

job = Outline(f"{SHOT}_latentmirror", shot=SHOT, show=SHOW)
job.add_layer(Shell("latentmirror", command=command, range=FRAMES, chunk=CHUNK, threads=4))
cuerun.launch(job, use_pycuerun=False)
