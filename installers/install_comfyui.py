"""Install latentmirror into a ComfyUI: link (or copy) the pack into custom_nodes/ and install its
requirements into that ComfyUI's Python without touching its torch.

    python installers/install_comfyui.py /path/to/ComfyUI [--python PY] [--copy] [--dry-run]

Which Python is ComfyUI's: --python, else a venv or portable build in the ComfyUI folder, else
the Python running this script when it has every package in ComfyUI's requirements.txt (a conda
env or a venv kept outside the folder: run this script with that env's Python).

torch, torchvision and torchaudio belong to the ComfyUI install: they are pinned to the versions
it already has while our requirements install. If it already has an OpenCV wheel other than
opencv-python-headless, ours is skipped (two OpenCV wheels in one environment break both).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parent.parent
PACK_NAME = "latentmirror"
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
OPENCV_WHEELS = (
    "opencv-python",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
    "opencv-python-headless",
)
_LIST_DISTRIBUTIONS = (
    "import json, importlib.metadata as m; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def find_python(comfyui: Path, given: str | None) -> Path:
    """The Python that runs this ComfyUI: --python, else its venv or portable build, else the
    Python running this script if it has ComfyUI's requirements."""
    if given:
        return Path(given)
    candidates = [
        ".venv/bin/python",
        "venv/bin/python",
        "../python_embeded/python.exe",
        ".venv/Scripts/python.exe",
        "venv/Scripts/python.exe",
    ]
    for candidate in candidates:
        if (comfyui / candidate).exists():
            return comfyui / candidate  # not resolved: a venv python is a symlink
    needed = comfyui_requirements(comfyui)
    missing = sorted(needed - set(installed_distributions(Path(sys.executable))))
    if needed and not missing:
        return Path(sys.executable)
    this_python = (
        f"this Python ({sys.executable}) lacks {', '.join(missing)} of its requirements.txt"
        if needed
        else f"it has no requirements.txt to check this Python ({sys.executable}) against"
    )
    raise SystemExit(
        f"cannot find the Python of {comfyui}: no {', '.join(candidates)} there, and "
        f"{this_python}; pass --python /path/to/its/python or run this script with it"
    )


def requirement_name(line: str) -> str:
    """The normalised distribution name of a requirements.txt line (PEP 503: ``Pillow`` and
    ``pillow`` are one; ``-`` ``_`` ``.`` alike), '' for a comment, blank or option line."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#")[0])
    return normalised(match.group(1)) if match else ""


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def comfyui_requirements(comfyui: Path) -> set[str]:
    """The distributions ComfyUI's requirements.txt names (empty when it has none)."""
    path = comfyui / "requirements.txt"
    lines = path.read_text().splitlines() if path.is_file() else []
    return {name for name in map(requirement_name, lines) if name}


def installed_distributions(python: Path) -> dict[str, str]:
    """Normalised name -> version of every distribution ``python`` has."""
    out = subprocess.run(
        [str(python), "-c", _LIST_DISTRIBUTIONS], check=True, capture_output=True, text=True
    )
    return {normalised(name): version for name, version in json.loads(out.stdout).items()}


def requirements_for(installed: dict[str, str]) -> tuple[list[str], list[str]]:
    """Our requirement lines for this environment, and notes on what was left out."""
    lines, notes = [], []
    for line in (PACK_ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        name = requirement_name(line)
        if not name:
            continue
        if name in TORCH_PACKAGES:
            notes.append(f"left out {line}: torch packages belong to ComfyUI")
            continue
        others = [w for w in OPENCV_WHEELS if w in installed and w != name]
        if name == "opencv-python-headless" and others:
            notes.append(
                f"left out {line}: this ComfyUI already has {', '.join(others)}, "
                "which provides cv2 (two OpenCV wheels break both)"
            )
            continue
        lines.append(line)
    return lines, notes


def torch_constraints(installed: dict[str, str]) -> list[str]:
    if "torch" not in installed:
        raise SystemExit(
            "this ComfyUI's Python has no torch; install torch for your GPU first "
            "(latentmirror never chooses a torch for you)"
        )
    return [f"{name}=={installed[name]}" for name in TORCH_PACKAGES if name in installed]


def place_pack(custom_nodes: Path, copy: bool, dry_run: bool) -> str:
    target = custom_nodes / PACK_NAME
    if target.is_symlink() and target.resolve() == PACK_ROOT:
        return f"{target} already links to {PACK_ROOT}"
    if target.exists() or target.is_symlink():
        if target.resolve() == PACK_ROOT:
            return f"{target} is this pack already"
        raise SystemExit(f"{target} exists and is not this pack; move it away first")
    if dry_run:
        return f"would {'copy' if copy else 'link'} {PACK_ROOT} to {target}"
    if copy:
        shutil.copytree(
            PACK_ROOT,
            target,
            ignore=shutil.ignore_patterns(
                ".venv", ".git", "__pycache__", "*.egg-info", "demo_output", ".pytest_cache"
            ),
        )
        return f"copied {PACK_ROOT} to {target}"
    target.symlink_to(PACK_ROOT, target_is_directory=True)
    return f"linked {target} -> {PACK_ROOT}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("comfyui", help="the ComfyUI folder (holding main.py and custom_nodes/)")
    parser.add_argument(
        "--python", help="ComfyUI's Python (default: its venv in the folder, else this Python)"
    )
    parser.add_argument("--copy", action="store_true", help="copy the pack instead of a link")
    parser.add_argument("--dry-run", action="store_true", help="say what would be done")
    args = parser.parse_args(argv)

    comfyui = Path(args.comfyui).expanduser().resolve()
    custom_nodes = comfyui / "custom_nodes"
    if not (comfyui / "main.py").is_file() or not custom_nodes.is_dir():
        raise SystemExit(f"{comfyui} does not look like ComfyUI (no main.py or custom_nodes/)")
    python = find_python(comfyui, args.python)
    installed = installed_distributions(python)
    constraints = torch_constraints(installed)
    requirements, notes = requirements_for(installed)

    print(f"[install] ComfyUI: {comfyui}")
    print(f"[install] its Python: {python}")
    print(f"[install] {place_pack(custom_nodes, args.copy, args.dry_run)}")
    print(f"[install] pinned (left as they are): {', '.join(constraints)}")
    for note in notes:
        print(f"[install] {note}")
    with tempfile.TemporaryDirectory() as scratch:
        constraint_file = Path(scratch) / "constraints.txt"
        constraint_file.write_text("\n".join(constraints) + "\n")
        command = [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-c",
            str(constraint_file),
            *requirements,
        ]
        print(f"[install] {'would run' if args.dry_run else 'running'}: {' '.join(command)}")
        if not args.dry_run:
            subprocess.run(command, check=True)
    after = installed if args.dry_run else installed_distributions(python)
    changed = [n for n in TORCH_PACKAGES if installed.get(n) != after.get(n)]
    if changed:  # cannot happen with the constraints above; say so loudly if it ever does
        print(f"[install] WARNING: {', '.join(changed)} changed", file=sys.stderr)
        return 1
    print(
        "[install] done; restart ComfyUI. Nodes appear under the 'latentmirror' category; "
        f"GAN models go in {comfyui / 'models' / 'gan'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
