import pytest

from segmodel import config


def test_presets_and_overrides():
    cfg = config.override(
        config.smoke(),
        [
            "train.epochs=7",
            "model.residual=true",
            "data.scale_range=0.5,2",
            "train.learning_rate=0.01",
        ],
    )
    assert cfg.train.epochs == 7 and cfg.model.residual is True
    assert cfg.data.scale_range == (0.5, 2.0) and cfg.train.learning_rate == 0.01
    assert config.smoke().train.epochs == 2  # frozen: the preset itself is untouched
    assert config.from_dict(cfg.to_dict()) == cfg
    assert config.PRESET_NAMES == ["default", "gpu", "smoke"]


@pytest.mark.parametrize(
    "assignment,message",
    [
        ("train.nope=1", "no field 'nope'"),
        ("bogus.x=1", "no section"),
        ("train.epochs", "section.field=value"),
        ("train.epochs=many", "invalid literal"),
        ("model.residual=maybe", "true/false"),
    ],
)
def test_bad_overrides_say_what_is_wrong(assignment, message):
    with pytest.raises(ValueError, match=message):
        config.override(config.smoke(), [assignment])


def test_unknown_preset():
    with pytest.raises(ValueError, match="known presets"):
        config.resolve("huge", [])


def test_planned_presets_need_a_manifest_and_take_overrides():
    from builders import fingerprint_manifest as manifest

    with pytest.raises(ValueError, match="manifest"):
        config.resolve("default", [])
    cfg, plan = config.resolve("default", ["data.batch_size=2"], manifest())
    assert cfg.data.batch_size == 2 and plan.config.data.batch_size != 2
    gpu, _ = config.resolve("gpu", [], manifest())
    assert gpu.train.mixed_precision and gpu.model.base_filters == 32
