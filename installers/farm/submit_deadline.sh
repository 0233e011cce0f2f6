#!/usr/bin/env bash
# Submit a shot to Thinkbox Deadline with its CommandLine plugin: one task per ChunkSize frames
# (deadline_job_info.job), each calling the latentmirror CLI on its frame range (<STARTFRAME> and
# <ENDFRAME> are Deadline's tokens). A task re-run after a crash skips frames already on disk.
# A stepped range (Frames=1001-1240x2): end the task's range with the same step,
# --frames=<STARTFRAME>-<ENDFRAME>x2 (a task's first and last frames lie on the step; without it
# the task would also render the frames in between).
# Edit the paths, range and pools in the two .job files, then: ./submit_deadline.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${DEADLINE_PATH:+$DEADLINE_PATH/}deadlinecommand" "$here/deadline_job_info.job" "$here/deadline_plugin_info.job"
