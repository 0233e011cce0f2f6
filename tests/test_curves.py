"""Curves: every interpolation against hand-computed values, held ends, the three text forms,
bad keys refused (table-driven), per-frame weights inside a batch, and a curve-driven render
that is the same bit for bit in one pass, in chunks and as farm tasks; an edited .chan
re-renders under existing=skip."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from latentmirror.core.curves import Curve, parse_curve
from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.losses import LossEvaluator, LossMix
from latentmirror.core.losses.mix import LossTerm
from latentmirror.core.reference import ReferenceItem, style_mix
from latentmirror.core.resynth import ResynthSettings, prepare_latents, truncate
from latentmirror.nodes.curve_nodes import CurveNode
from latentmirror.plugin.local_backend import LocalBackend
from latentmirror.plugin.shot import ShotJob, render_shot

from .support import (
    assert_clean_refusal,
    curve_graph,
    folder_state,
    frames_on_disk,
    installers_module,
    pixels,
    run_cli,
)

# ------------------------------------------------------------------------------ evaluation


def test_constant_holds_the_earlier_key_until_the_next():
    curve = parse_curve("1:2, 5:4 constant, 9:0 constant")
    assert curve.at([0, 1, 4.99, 5, 8, 9, 20]) == [2, 2, 2, 4, 4, 0, 0]


def test_linear_is_a_straight_line_between_keys():
    curve = parse_curve("10:0, 20:5, 30:-5")
    assert curve.at([10, 12, 15, 20, 25, 30]) == [0, 1, 2.5, 5, 0, -5]


def test_ease_is_flat_at_both_keys():
    # 3t^2 - 2t^3 between the keys: t = 0.25 -> 0.15625, t = 0.5 -> 0.5
    curve = parse_curve("0:0, 4:1 ease, 8:3 ease")
    assert curve.at([1, 2, 3]) == [0.15625, 0.5, 0.84375]
    assert curve(6) == 1 + 2 * 0.5  # the second segment: 1 + (3 - 1) * smoothstep(0.5)


def test_smooth_uses_catmull_rom_slopes_at_inner_keys_and_flat_ends():
    # keys 0:0, 10:10, 20:0; the slope at 10 is (0 - 0) / 20 = 0, at the ends 0:
    # t = 0.5 of the first segment: h00 0 + h01 10 = 0.5 * 10 = 5
    curve = parse_curve("smooth, 0:0, 10:10, 20:0")
    assert curve(5) == 5.0 and curve(15) == 5.0
    # keys 0:0, 10:10, 20:20: the slope at 10 is 1; t = 0.5 of the first segment:
    # h01 10 + h11 * 10 * 1 = 0.5 * 10 + (-0.125) * 10 = 3.75
    ramp = parse_curve("smooth, 0:0, 10:10, 20:20")
    assert ramp(5) == 3.75 and ramp(15) == 16.25 and ramp(10) == 10


def test_values_are_held_before_the_first_and_after_the_last_key():
    curve = parse_curve("1001:0.25, 1048:1 smooth")
    assert curve.at([-1e9, 900, 1001]) == [0.25, 0.25, 0.25]
    assert curve.at([1048, 1049, 1e9]) == [1.0, 1.0, 1.0]
    assert parse_curve("1010:7").at([1, 1010, 2000]) == [7, 7, 7]  # one key: a constant


def test_a_key_word_sets_how_the_curve_arrives_and_a_lone_word_the_default():
    mixed = parse_curve("ease, 0:0, 10:1, 20:0 linear")
    assert mixed.segments == ("ease", "linear")
    assert mixed(15) == 0.5
    assert parse_curve("0:0, 10:1 smooth").segments == ("smooth",)


# ------------------------------------------------------------------------------ text forms


def test_nuke_curve_text():
    curve = parse_curve("{curve x1001 0 x1011 1}")  # Nuke's default interpolation: smooth
    assert curve.frames == (1001, 1011) and curve.segments == ("smooth",)
    assert curve(1006) == 0.5
    # values without x go on successive frames; letters set the keys after them
    stepped = parse_curve("{curve K x1 0 1 L 2 x10 5}")
    assert stepped.frames == (1, 2, 3, 10)
    assert stepped.segments == ("constant", "constant", "linear")
    assert stepped.at([1.5, 2.5, 6.5]) == [0, 1, 3.5]
    # slopes are read and ignored; H is ease; C is smooth
    assert parse_curve("{curve H x0 0 s0 x4 1 s0.5}").at([1, 2]) == [0.15625, 0.5]
    assert parse_curve("{curve C x0 0 x10 10 x20 20}")(5) == 3.75


def test_nuke_text_with_several_curves_is_picked_by_column():
    text = "{curve x1 0 x3 2} {curve L x1 10 x3 30}"
    assert parse_curve(text)(2) == 1.0
    assert parse_curve(text, column=2)(2) == 20.0


def test_chan_lines_pasted_and_as_a_file(tmp_path):
    text = "# frame tx ty\n1001 0.0 10\n1002 0.5 20\n\n1004 1.0 40\n"
    assert parse_curve(text).at([1001, 1003, 1004]) == [0, 0.75, 1.0]
    assert parse_curve(text, column=2)(1003) == 30.0
    chan = tmp_path / "move.chan"
    chan.write_text(text)
    curve = CurveNode().build(str(chan), column=2)[0]
    assert curve.at([1001, 1003, 1010]) == [10, 30, 40]
    two_columns = tmp_path / "weights.csv"
    two_columns.write_text("1,0\n3,1\n")
    assert CurveNode().build(str(two_columns))[0](2) == 0.5


def test_a_curve_file_outside_the_allowed_folders_is_refused(tmp_path, headless_host):
    from latentmirror.host import PathRoots

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "secret.chan"
    outside.write_text("1 0\n")
    headless_host.path_roots = lambda: PathRoots(readable=(str(allowed),), writable=())
    with pytest.raises(LatentmirrorError) as caught:
        CurveNode().build(str(outside))
    assert "outside the folders" in str(caught.value) and "input 'keys'" in str(caught.value)


# ------------------------------------------------------------------------------ bad keys

BAD_KEYS = [
    # (keys, column, what the message must name)
    ("", 1, ["input 'keys'", "empty"]),
    ("1001:0, 1001:1", 1, ["input 'keys'", "frame 1001 is keyed twice"]),
    ("1048:1, 1001:0", 1, ["input 'keys'", "frame 1001 comes after frame 1048"]),
    ("1001:0, 1010:abc", 1, ["input 'keys'", "'abc'", "character 8"]),
    ("1001:0, 1010:1 wobble", 1, ["input 'keys'", "'wobble'", "character 8"]),
    ("1001:nan", 1, ["input 'keys'", "not a finite number"]),
    ("1001:inf", 1, ["input 'keys'", "not a finite number"]),
    ("1001 0, 1010", 1, ["input 'keys'", "cannot read the key", "character 1"]),
    ("{curve x1 0 x2 q}", 1, ["input 'keys'", "'q'", "character 16"]),
    ("{curve 0 1}", 1, ["input 'keys'", "has no frame"]),
    ("{curve x1 0 x1 1}", 1, ["input 'keys'", "keyed twice"]),
    ("{curve x1 0} junk", 1, ["input 'keys'", "junk"]),
    ("{curve x1 0}", 2, ["input 'column'", "holds 1"]),
    ("1 0\n2 nan", 1, ["input 'keys'", "line 2", "not a finite number"]),
    ("1 0 5\n2 1 6", 3, ["input 'column'", "line 1", "column 3"]),
]


@pytest.mark.parametrize(("keys", "column", "mentions"), BAD_KEYS)
def test_bad_keys_are_refused_naming_the_input_and_the_token(keys, column, mentions):
    with pytest.raises(LatentmirrorError) as caught:
        CurveNode().build(keys, column=column)
    for mention in mentions:
        assert mention in str(caught.value)
    # the same problem is found before anything runs (ComfyUI's VALIDATE_INPUTS, the validator)
    verdict = CurveNode.VALIDATE_INPUTS(keys=keys, column=column)
    assert verdict is not True and mentions[-1] in verdict


def test_a_missing_curve_file_names_the_file(tmp_path):
    with pytest.raises(LatentmirrorError) as caught:
        CurveNode().build(str(tmp_path / "nope.chan"))
    assert "no such curve file" in str(caught.value) and "nope.chan" in str(caught.value)


# ------------------------------------------------------------------------------ per frame


def test_a_weight_curve_weights_each_frame_of_a_batch_by_its_frame_number(demo_model):
    gen = torch.Generator().manual_seed(1)
    output = torch.rand(3, 3, 32, 32, generator=gen) * 2 - 1
    target = torch.rand(3, 3, 32, 32, generator=gen) * 2 - 1
    curve = parse_curve("1001:0, 1003:1")  # 0, 0.5, 1 on frames 1001-1003
    curved = LossEvaluator(LossMix((LossTerm("l1", 9.0, {"resolution": 32}, weight_curve=curve),)))
    plain = LossEvaluator(LossMix().add("l1", 1.0, {"resolution": 32}))
    per_frame = [float(plain(output[i : i + 1], target[i : i + 1]).total) for i in range(3)]
    total = float(curved(output, target, frames=[1001, 1002, 1003]).total)
    assert total == pytest.approx((0 * per_frame[0] + 0.5 * per_frame[1] + per_frame[2]) / 3)
    # the weight is read on the frame number, not the position in the batch
    moved = float(curved(output, target, frames=[1003, 1002, 1001]).total)
    assert moved == pytest.approx((per_frame[0] + 0.5 * per_frame[1]) / 3)
    with pytest.raises(LatentmirrorError, match="frame number"):
        curved(output, target)


def test_w_prior_with_a_weight_curve_pulls_each_frame_by_its_own_weight(demo_model):
    ws = torch.randn(2, demo_model.num_ws, demo_model.w_dim)
    image = torch.zeros(2, 3, 8, 8)
    curve = Curve((1.0, 2.0), (0.0, 2.0), ("linear",))
    mix = LossMix((LossTerm("w_prior", 1.0, weight_curve=curve),))
    total = LossEvaluator(mix, demo_model)(image, image, ws=ws, frames=[1, 2]).total
    w_avg = demo_model.w_avg.float()
    second = (ws[1] - w_avg).square().mean()
    assert float(total) == pytest.approx(float(2.0 * second / 2), rel=1e-5)


def test_truncation_and_style_mix_curves_act_per_frame_as_the_numbers_would():
    ws = torch.randn(3, 4, 5)
    w_avg = torch.randn(5)
    psi = torch.tensor([1.0, 0.5, 0.0])
    per_frame = truncate(ws, w_avg, psi)
    for i, value in enumerate(psi.tolist()):
        assert torch.allclose(per_frame[i : i + 1], truncate(ws[i : i + 1], w_avg, value))
    target = torch.randn(4, 5)
    mixed = style_mix(ws, target, [1, 2], torch.tensor([0.0, 0.25, 1.0]))
    assert torch.equal(mixed[0], ws[0]) and torch.equal(mixed[2, 1:3], target[1:3])


def test_resynthesis_reads_the_curve_on_the_latents_frame_numbers(demo_model, demo_faces):
    from latentmirror.core.fit import plan_fit
    from latentmirror.core.latents import GanLatent

    _images, ws = demo_faces
    fit = plan_fit("stretch", 64, 64, 64)
    latent = GanLatent(ws[:3].clone(), "w_plus", demo_model.content_hash, [1001, 1005, 1009], fit)
    curve = parse_curve("1001:1, 1009:0")
    animated = prepare_latents(demo_model, latent, ResynthSettings(truncation_curve=curve))
    for i, psi in enumerate([1.0, 0.5, 0.0]):
        one = prepare_latents(demo_model, latent.select([i]), ResynthSettings(truncation=psi))
        assert torch.allclose(animated[i : i + 1], one, atol=1e-6)


def test_strength_curves_are_part_of_the_reference_fingerprint():
    images = torch.rand(1, 8, 8, 3)
    plain = ReferenceItem(images, "latent_anchor", 0.5)
    curved = ReferenceItem(images, "latent_anchor", 0.5, strength_curve=parse_curve("1:0, 9:1"))
    other = ReferenceItem(images, "latent_anchor", 0.5, strength_curve=parse_curve("1:0, 9:2"))
    digests = {r.describe()["images"]["sha256"] for r in (plain, curved, other)}
    assert len(digests) == 1
    described = [json.dumps(r.describe(), sort_keys=True) for r in (plain, curved, other)]
    assert len(set(described)) == 3  # cache keys and fingerprints tell them apart


# ------------------------------------------------------------------------------ renders


@pytest.fixture
def curve_shot(shot_plate, tmp_path):
    chan = tmp_path / "prior.chan"
    chan.write_text("1001 0.001\n1004 0.05\n")
    return curve_graph(tmp_path / "curves.json", str(chan)), chan


def _render(graph, plate, out, chunk, frames=None):
    sets = (f"1.path={plate}", f"10.path={out}")
    return render_shot(ShotJob(graph, frames, sets, chunk, 0), LocalBackend())


@pytest.mark.slow
def test_a_curve_driven_frame_is_bit_identical_in_one_pass_in_chunks_and_as_farm_tasks(
    headless_host, shot_plate, curve_shot, tmp_path
):
    graph, _chan = curve_shot
    single = str(tmp_path / "single" / "s.####.exr")
    chunked = str(tmp_path / "chunked" / "c.####.exr")
    farm = str(tmp_path / "farm" / "f.####.exr")
    _render(graph, shot_plate, single, 100, frames="1001-1004")
    _render(graph, shot_plate, chunked, 2, frames="1001-1004")
    for first in (1001, 1003):  # each task on its own, as a farm runs them
        _render(graph, shot_plate, farm, 100, frames=f"{first}-{first + 1}")
    a, b, c = pixels(single), pixels(chunked), pixels(farm)
    assert frames_on_disk(chunked) == frames_on_disk(farm) == [1001, 1002, 1003, 1004]
    assert np.array_equal(a, b) and np.array_equal(a, c)
    # and the curves did something: the first frame (no face) differs from the last (faces)
    plate = pixels(shot_plate)[:4]
    assert np.abs(a[-1] - plate[-1]).mean() > np.abs(a[0] - plate[0]).mean()


@pytest.mark.slow
def test_an_edited_chan_file_re_renders_under_existing_skip(
    headless_host, shot_plate, curve_shot, tmp_path
):
    graph, chan = curve_shot
    out = str(tmp_path / "out" / "o.####.exr")
    first = _render(graph, shot_plate, out, 100, frames="1004")
    assert len(first.rendered) == 1
    again = _render(graph, shot_plate, out, 100, frames="1004")
    assert not again.rendered and len(again.skipped) == 1  # nothing changed: nothing to do
    before = pixels(out)
    chan.write_text("1001 0.001\n1004 5.0\n")  # a stronger pull toward the average face
    edited = _render(graph, shot_plate, out, 100, frames="1004")
    assert len(edited.rendered) == 1
    assert not np.array_equal(before, pixels(out))


# ------------------------------------------------------------------------------ the command

CLI_CASES = [
    # (--set value for the Curve node's keys, refused?, what stderr must name)
    ("16.keys=1001:0, 1048:1 smooth", False, []),
    ("16.keys=1001:0, 1001:1", True, ["16 (pull)", "input 'keys'", "keyed twice"]),
    ("16.keys={curve x1 0 x2 zz}", True, ["16 (pull)", "input 'keys'", "'zz'"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("keys", "refused", "mentions"), CLI_CASES)
def test_headless_set_gives_a_curve_its_keys(keys, refused, mentions, shot_plate, tmp_path):
    plate_folder = os.path.dirname(shot_plate)
    graph = curve_graph(tmp_path / "curves.json", str(tmp_path / "prior.chan"))
    (tmp_path / "prior.chan").write_text("1001 0.001\n")
    out = tmp_path / "out"
    plate_before = folder_state(plate_folder)
    result = run_cli(
        "render", graph, "--set", f"1.path={shot_plate}", "--set", f"10.path={out}/o.####.exr",
        "--set", keys, "--set", "7.steps=2", "--frames", "1001", cwd=tmp_path,
    )  # fmt: skip
    assert folder_state(plate_folder) == plate_before
    if refused:
        assert_clean_refusal(result, *mentions)
        assert not out.exists()  # refused before anything ran: nothing written
    else:
        assert result.returncode == 0, result.stderr[-2000:]
        assert frames_on_disk(str(out / "o.####.exr")) == [1001]
    shutil.rmtree(out, ignore_errors=True)


# ------------------------------------------------------------------------------ hosts and wires


def test_in_comfyui_the_curve_node_shows_its_curve(comfy_modules):
    import cv2

    from latentmirror.plugin import comfyui

    comfyui.register()
    answer = CurveNode().build("1001:0, 1048:1 smooth", unique_id="16")
    assert answer["result"][0](1024.5) == 0.5
    (entry,) = answer["ui"]["images"]
    assert entry["filename"].startswith("curve_16")
    plot = cv2.imread(str(comfy_modules.base / "temp" / entry["filename"]))
    assert plot.shape[0] > 100 and plot.std() > 10  # a drawn plot, not a blank image


def test_a_curve_wire_is_type_checked_like_every_other(tmp_path):
    from latentmirror.plugin.graph import graph_from_json
    from latentmirror.plugin.runner import node_classes
    from latentmirror.plugin.validate import validate_graph

    make = installers_module("make_templates")
    graph = json.loads(json.dumps(make.ui_graph(make.dissolve()[1], "d")))
    link = next(x for x in graph["links"] if x[5] == "CURVE" and x[3] == 8)
    link[1], link[2], link[5] = 2, 0, "IMAGE"  # an IMAGE into truncation_curve
    classes = node_classes()
    with pytest.raises(LatentmirrorError) as caught:
        validate_graph(graph_from_json(graph, classes), classes, local_paths=False)
    assert "truncation_curve" in str(caught.value) and "CURVE" in str(caught.value)


def test_invert_refuses_curves_without_the_plates_frame_numbers(demo_model):
    from latentmirror.nodes.invert_nodes import InvertNode

    mix = LossMix((LossTerm("l1", 1.0, weight_curve=parse_curve("1001:0, 1010:1")),))
    with pytest.raises(LatentmirrorError) as caught:
        InvertNode().run(demo_model, torch.rand(1, 64, 64, 3), "w_plus", 1, "fast", 0, mix)
    assert "input 'plate_info'" in str(caught.value) and "frame numbers" in str(caught.value)
