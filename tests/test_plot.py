"""The loss-curve plot (core.plot) and how hosts show it: kept by the headless host and written
beside the run's outputs by the runner."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from latentmirror import host as host_module
from latentmirror.core import plot
from latentmirror.core.plot import loss_curve_image
from latentmirror.plugin.graph import from_api_format
from latentmirror.plugin.headless import HeadlessHost
from latentmirror.plugin.runner import plot_folder, run_graph, write_pending_plots

NAN = float("nan")


def _ink(image: np.ndarray) -> int:
    """Pixels that are not background."""
    return int(np.any(image != plot.BACKGROUND, axis=-1).sum())


def _falling(steps: int = 200, start: float = 1.0, end: float = 0.2) -> list[float]:
    return list(np.linspace(start, end, steps))


def _panel_rows(image: np.ndarray, panels: int) -> list[np.ndarray]:
    """The plot area of each panel (default height: PANEL_HEIGHT each, from plot.TOP)."""
    rows = []
    for index in range(panels):
        top = plot.TOP + index * plot.PANEL_HEIGHT + plot.HEADER
        rows.append(image[top + 2 : top + plot.PANEL_HEIGHT - plot.HEADER - 6, plot.LEFT + 2 : -20])
    return rows


# ------------------------------------------------------------------------------ the image


def test_image_is_rgb_uint8_of_the_asked_size():
    image = loss_curve_image({"total": _falling(), "lr": [1e-3] * 200}, width=640, height=300)
    assert image.shape == (300, 640, 3) and image.dtype == np.uint8


def test_default_height_grows_with_the_panels():
    one = loss_curve_image({"total": _falling()})
    three = loss_curve_image({"total": _falling(), "lpips_vgg": _falling(), "lr": [0.1] * 200})
    assert one.shape[1] == three.shape[1] == 720
    assert three.shape[0] - one.shape[0] == 2 * plot.PANEL_HEIGHT


def test_empty_history_says_cached():
    for history in ({}, {"total": [], "lr": []}):
        image = loss_curve_image(history)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[1] == 720
        assert image.shape[0] < 100 and _ink(image) > 0  # a short line of text


def test_more_series_draw_more():
    empty = loss_curve_image({})
    one = loss_curve_image({"total": _falling()})
    two = loss_curve_image({"total": _falling(), "lpips_vgg": _falling(start=0.6)})
    assert _ink(two) > _ink(one) > _ink(empty)


def test_every_panel_has_its_curve():
    history = {"total": _falling(), "w_prior": _falling(end=0.9), "lr": _falling(end=0.0)}
    image = loss_curve_image(history)
    grid_only = loss_curve_image({k: [NAN] * 200 for k in history})
    for drawn, bare in zip(_panel_rows(image, 3), _panel_rows(grid_only, 3), strict=True):
        assert (drawn != bare).any(axis=-1).sum() > 100


def test_rising_and_falling_series_differ():
    up = loss_curve_image({"total": _falling(start=0.2, end=1.0)})
    down = loss_curve_image({"total": _falling(start=1.0, end=0.2)})
    assert up.shape == down.shape and (up != down).any(axis=-1).sum() > 200


def test_order_is_total_first_and_lr_last():
    history = {"lr": [0.1], "noise_reg": [1.0], "total": [2.0], "lpips_vgg": [0.5]}
    assert plot._ordered_labels(history) == ["total", "noise_reg", "lpips_vgg", "lr"]


def test_single_step_and_constant_series():
    single = loss_curve_image({"total": [0.5], "lr": [0.01]})
    assert single.dtype == np.uint8 and _ink(single) > _ink(loss_curve_image({}))
    constant = loss_curve_image({"total": [0.3] * 50, "zero": [0.0] * 50})
    assert constant.dtype == np.uint8
    assert plot._y_range(np.array([0.3, 0.3]))[0] < 0.3 < plot._y_range(np.array([0.3, 0.3]))[1]


def test_nan_points_are_skipped_and_all_nan_series_drawn_empty():
    steps = 100
    sparse = [v if i % 10 == 0 else NAN for i, v in enumerate(_falling(steps))]
    history = {"total": _falling(steps), "noise_reg": sparse, "reference_pull_1": [NAN] * steps}
    image = loss_curve_image(history)
    assert image.shape == (plot.TOP + 3 * plot.PANEL_HEIGHT + plot.BOTTOM, 720, 3)
    sparse_panel, nan_panel = _panel_rows(image, 3)[1:]
    blank = _panel_rows(loss_curve_image({k: [NAN] * steps for k in history}), 3)
    assert (sparse_panel != blank[1]).any()  # the sparse term still drew its line
    np.testing.assert_array_equal(nan_panel, blank[2])  # nothing but the grid
    assert plot._panel_caption("reference_pull_1", np.array([NAN]), "linear").endswith(
        "(no values)"
    )
    caption = plot._panel_caption("noise_reg", np.array(sparse), "linear")
    assert caption == "noise_reg  last 0.273  min 0.273"  # step 90


def test_caption_shows_last_and_min():
    caption = plot._panel_caption("lpips_vgg", np.array([0.5, 0.201, 0.213, NAN]), "linear")
    assert caption == "lpips_vgg  last 0.213  min 0.201"


@pytest.mark.parametrize(
    "values, scale",
    [
        ([1.0, 0.01], "log"),  # a factor 100
        ([1.0, 0.06], "linear"),  # a factor 16.7
        ([1.0, 0.0001, NAN], "log"),  # NaN ignored
        ([1.0, 0.0], "linear"),  # zero cannot go on a log axis
        ([1.0, -0.5, 0.001], "linear"),
        ([0.3] * 5, "linear"),
        ([NAN, NAN], "linear"),
        ([], "linear"),
    ],
)
def test_y_scale(values, scale):
    assert plot._y_scale(values) == scale


def test_log_axis_ticks_are_decades():
    ticks = plot._y_ticks(-3.2, 0.4, "log")
    assert ticks and all(t == int(t) for t in ticks)
    assert [plot._format_tick(t, "log") for t in ticks][:1] == ["1e-3"]


def test_100k_steps_are_decimated_keeping_a_spike():
    steps = 100_000
    values = np.linspace(1.0, 0.5, steps)
    values[61_234] = 40.0
    values[77_777] = 0.01  # and a dip
    kept_steps, kept = plot._decimate(np.arange(steps), values, 644)
    assert len(kept) <= 2 * 644
    assert kept.max() == 40.0 and kept.min() == 0.01
    assert 61_234 in kept_steps and np.all(np.diff(kept_steps) > 0)
    image = loss_curve_image({"total": list(values), "lr": [1e-3] * steps})
    assert image.shape == (plot.TOP + 2 * plot.PANEL_HEIGHT + plot.BOTTOM, 720, 3)


def test_decimation_skips_nan_buckets():
    values = np.full(10_000, NAN)
    values[::1000] = np.arange(10.0)
    kept_steps, kept = plot._decimate(np.arange(10_000), values, 100)
    assert list(kept_steps) == list(range(0, 10_000, 1000)) and not np.isnan(kept).any()


def test_short_series_are_not_decimated():
    kept_steps, kept = plot._decimate(np.arange(5), np.arange(5.0), 100)
    assert list(kept) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_boundaries_draw_faint_lines():
    history = {"total": [0.5] * 300}  # flat: the curve does not reach where the lines go
    plain = loss_curve_image(history)
    marked = loss_curve_image(history, boundaries=[100, 200, 5000])  # 5000: out of range
    changed = np.flatnonzero((plain != marked).any(axis=-1).any(axis=0))
    assert len(changed) == 2
    assert tuple(marked[plot.TOP + plot.HEADER + 10, changed[0]]) == plot.BOUNDARY


def test_too_many_boundaries_are_left_out():
    history = {"total": _falling(100_000)}
    assert np.array_equal(
        loss_curve_image(history), loss_curve_image(history, boundaries=list(range(0, 100_000, 50)))
    )


def test_title_is_drawn():
    history = {"total": _falling()}
    titled = loss_curve_image(history, title="invert 7")
    assert titled.shape[0] == loss_curve_image(history).shape[0] + plot.TITLE_HEIGHT


# ------------------------------------------------------------------------------ hosts


def test_headless_host_keeps_plots_by_name():
    host = HeadlessHost(show_progress=False)
    first = loss_curve_image({"total": _falling()})
    second = loss_curve_image({"total": _falling(start=0.2, end=1.0)})
    assert host.show_plot(first, "invert_loss_3") == []
    assert host.show_plot(second, "invert_loss_3") == []
    assert list(host.plots) == ["invert_loss_3"] and host.plots["invert_loss_3"] is second


def test_write_pending_plots_into_a_folder(tmp_path):
    host = HeadlessHost(show_progress=False)
    image = loss_curve_image({"total": _falling()})
    host.show_plot(image, "invert_loss_2")
    host.show_plot(image, "../escape")
    written = write_pending_plots(host, str(tmp_path))
    assert written == [str(tmp_path / "invert_loss_2.png"), str(tmp_path / "_escape.png")]
    assert host.plots == {}
    np.testing.assert_array_equal(cv2.imread(written[0])[..., ::-1], image)


class _PlotNode:
    """A test-only node that shows a plot through the host, as the Invert node does."""

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "x"})}}

    def run(self, text):
        image = loss_curve_image({"total": _falling(), "lr": [1e-3] * 200})
        host_module.current_host().show_plot(image, "invert_loss_7")
        return (text,)


class _WriteNode:
    """A test-only output node writing one text file, reporting it as the savers do."""

    RETURN_TYPES = ()
    FUNCTION = "write"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING",), "path": ("STRING", {"default": ""})}}

    def write(self, text, path):
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        return {"ui": {"files": [path]}, "result": ()}


@pytest.fixture
def headless(monkeypatch):
    host = host_module.set_host(HeadlessHost(show_progress=False))
    yield host
    host_module.set_host(None)


def test_runner_writes_the_plot_beside_the_outputs(headless, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    graph = from_api_format(
        {
            "1": {"class_type": "Test_Plot", "inputs": {"text": "hello"}},
            "2": {
                "class_type": "Test_Write",
                "inputs": {"text": ["1", 0], "path": str(out / "result.txt")},
            },
        }
    )
    report = run_graph(graph, {"Test_Plot": _PlotNode, "Test_Write": _WriteNode})
    assert report.files == [str(out / "result.txt")]
    assert report.plots == [str(out / "result.invert_loss_7.png")]
    png = cv2.imread(report.plots[0])
    assert png is not None and png.shape == (plot.TOP + 2 * plot.PANEL_HEIGHT + plot.BOTTOM, 720, 3)
    assert headless.plots == {}


def test_two_graphs_rendering_into_one_folder_keep_their_own_plots(headless, tmp_path):
    plots = []
    for sequence in ("identity", "obscura"):
        graph = from_api_format({
            "1": {"class_type": "Test_Plot", "inputs": {"text": sequence}},
            "2": {"class_type": "Test_Write",
                  "inputs": {"text": ["1", 0], "path": str(tmp_path / f"{sequence}.1001.exr")}},
        })  # fmt: skip
        plots += run_graph(graph, {"Test_Plot": _PlotNode, "Test_Write": _WriteNode}).plots
    assert plots == [
        str(tmp_path / "identity.invert_loss_7.png"),
        str(tmp_path / "obscura.invert_loss_7.png"),
    ]
    assert all(os.path.isfile(p) for p in plots)


def test_runner_without_plots_reports_none(headless, tmp_path):
    graph = from_api_format(
        {"1": {"class_type": "Test_Write", "inputs": {"text": "x", "path": str(tmp_path / "a")}}}
    )
    report = run_graph(graph, {"Test_Write": _WriteNode})
    assert report.plots == [] and not list(tmp_path.glob("*.png"))


def test_plot_folder_falls_back_to_skipped_files_then_cwd(tmp_path, monkeypatch):
    from latentmirror.plugin.runner import RunReport

    report = RunReport(ui={"3": {"files": [], "skipped": [str(tmp_path / "s" / "a.0001.exr")]}})
    assert plot_folder(report) == str(tmp_path / "s")
    monkeypatch.chdir(tmp_path)
    assert plot_folder(RunReport()) == os.getcwd()


def test_default_host_shows_nothing():
    class Minimal(host_module.Host):
        def progress(self, total, description):
            raise NotImplementedError

        def check_interrupt(self):
            pass

        def device(self):
            return None

        def model_folders(self, kind):
            return []

    assert Minimal().show_plot(np.zeros((4, 4, 3), np.uint8), "p") == []


def test_cli_render_prints_the_plots(monkeypatch, capsys, tmp_path):
    from latentmirror.plugin import cli, runner

    report = runner.RunReport(ui={"3": {"files": [str(tmp_path / "a.0001.exr")]}})
    report.plots = [str(tmp_path / "invert_loss_7.png")]
    monkeypatch.setattr(runner, "run_graph_file", lambda *args: report)
    monkeypatch.setattr(HeadlessHost, "install_interrupt_handler", lambda self: None)
    try:
        assert cli.main(["render", "graph.json", "--quiet"]) == cli.EXIT_OK
    finally:
        host_module.set_host(None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("rendered graph.json: 0 nodes, 1 files written")
    assert lines[-1] == f"loss plot: {tmp_path / 'invert_loss_7.png'}"
