"""The plan's choices for a few dataset fingerprints, as golden values."""

import pytest
from builders import fingerprint_manifest as manifest

from segmodel import plan as plan_lib


def _fields(p):
    c = p.config
    return (
        c.data.patch_size,
        c.model.depth,
        c.data.batch_size,
        c.train.class_weights,
        c.data.cache_decoded,
    )


@pytest.mark.parametrize(
    "fingerprint,expected",
    [
        # ~200 px gray slices, 3 classes (the held-out case): whole images, depth 4, batch 5
        (dict(height=211, width=205), (224, 4, 5, "none", True)),
        # small images train whole with a shallower net and bigger batches
        (dict(height=48, width=60, channels=3), (60, 2, 32, "none", True)),
        # large RGB tiles: capped patch (crops), deepest CPU net
        (dict(height=1024, width=1536, channels=3, train=5000), (256, 4, 4, "none", False)),
        # a rare class (1/200 of the background): inverse-sqrt class weights
        (dict(frequencies=(0.9, 0.0955, 0.0045)), (256, 4, 4, "inverse_sqrt", True)),
        # tiny data: never a batch larger than the training set
        (dict(height=32, width=32, train=6, val=2), (32, 2, 6, "none", True)),
    ],
)
def test_plan_golden_values(fingerprint, expected):
    assert _fields(plan_lib.plan(manifest(**fingerprint))) == expected


def test_plan_fixes_steps_not_passes_and_fits_a_budget():
    small = plan_lib.plan(manifest(train=40)).config
    large = plan_lib.plan(manifest(train=40_000)).config
    assert small.train.steps_per_epoch == large.train.steps_per_epoch == 50
    assert small.train.epochs == 0 and small.train.max_minutes == plan_lib.DEFAULT_MINUTES
    assert small.model.norm == "batch" and small.model.norm_momentum == 0.9
    assert small.model.dropout == 0.0
    # a patch is always a multiple of what the U-Net pools by
    for side in (33, 100, 211, 257, 4000):
        c = plan_lib.plan(manifest(height=side, width=side)).config
        assert c.data.patch_size % 2**c.model.depth == 0


def test_gpu_plan_is_larger():
    cpu = plan_lib.plan(manifest(height=1024, width=1024)).config
    gpu = plan_lib.plan(manifest(height=1024, width=1024), "gpu").config
    assert (gpu.data.patch_size, gpu.model.depth, gpu.model.base_filters) == (512, 5, 32)
    assert gpu.data.patch_size > cpu.data.patch_size and gpu.train.mixed_precision


def test_plan_says_why_and_the_cli_prints_it(ingested_dir, capsys):
    assert plan_lib.main(["--data_dir", str(ingested_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan: ") and "patch_size:" in out and "class_weights:" in out


def test_precision_follows_the_device():
    m = manifest(height=211, width=205)
    cases = {
        ("cpu", False): (False, "float32"),
        ("cpu", True): (True, "bfloat16"),
        ("gpu", False): (True, "float16"),
        ("gpu", True): (True, "float16"),  # bf16 units on the host CPU do not matter then
    }
    for (device, bf16), (mixed, dtype) in cases.items():
        t = plan_lib.plan(m, device, cpu_bf16=bf16).config.train
        assert t.mixed_precision is mixed, (device, bf16)
        if mixed:
            assert t.mixed_dtype == dtype, (device, bf16)
        assert "precision" in plan_lib.plan(m, device, cpu_bf16=bf16).reasons


def test_cpu_bf16_units_are_read_from_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real reader, not conftest's pinned one
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert plan_lib.cpu_has_bf16(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not plan_lib.cpu_has_bf16(str(info))
    assert not plan_lib.cpu_has_bf16(str(tmp_path / "missing"))  # not Linux: float32
