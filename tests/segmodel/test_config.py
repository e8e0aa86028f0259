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
    assert set(config.PRESETS) == {"default", "smoke", "demo", "gpu"}


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
        config.override(config.default(), [assignment])


def test_unknown_preset():
    with pytest.raises(ValueError, match="known presets"):
        config.resolve("huge", [])
