import subprocess
from pathlib import Path

import pytest

from predictive_scoring.config import (
    BaseConfig,
    Capacity,
    ConfigError,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.stages import Stage
from tests.conftest import REPO
from tests.helpers import message_of

KINDS = {"datasets": DatasetConfig, "rules": RulesConfig, "models": ModelConfig}


def shipped_configs() -> list[Path]:
    """The config files the repository ships: those git tracks, so that a file a user wrote
    under configs/ (``learn-points --out configs/rules/learned.yaml``) is not taken for one.
    Outside a git checkout, every YAML file under configs/."""
    listed = subprocess.run(["git", "ls-files", "configs/*/*.yaml"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    if listed.returncode == 0 and listed.stdout.strip():
        return [REPO / line for line in sorted(listed.stdout.split())]
    return sorted((REPO / "configs").glob("*/*.yaml"))


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_config(path, KINDS[path.parent.name])
    if isinstance(config, DatasetConfig):
        assert load_config(REPO / config.rules, RulesConfig).stage_thresholds


def test_base_config_and_data_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base = load_config(REPO / "configs" / "base.yaml", BaseConfig)
    monkeypatch.delenv("PREDICTIVE_SCORING_DATA_DIR", raising=False)
    assert base.resolved_data_dir() == Path(base.data_dir)
    monkeypatch.setenv("PREDICTIVE_SCORING_DATA_DIR", str(tmp_path))
    assert base.resolved_data_dir() == tmp_path


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_error_names_file_key_path_and_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, """
name: broken
event_rules:
  - {name: demo, event_type: demo_request, points: lots}
stage_thresholds: {subscriber: 1, mql: 16}
""")
    with pytest.raises(ConfigError) as caught:
        load_config(path, RulesConfig)
    message = str(caught.value)
    assert str(path) in message
    assert "event_rules.0.points" in message
    assert "valid number" in message


def test_unknown_key_is_reported_as_a_typo(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nstage_tresholds: {mql: 1}\n")
    message = message_of(ConfigError, load_config, path, RulesConfig)
    assert "stage_tresholds: unknown key; did you mean 'stage_thresholds'?" in message
    assert "stage_thresholds: Field required" in message  # the missing, correctly spelt key


@pytest.mark.parametrize(("change", "where", "nearest"), [
    (("horizon_days: 90", "horizon_day: 90"), "snapshots.horizon_day", "horizon_days"),
    (("attributes:", "atributes:"), "atributes", "attributes"),
    (("  numeric: [employees]", "  numerical: [employees]"), "attributes.numerical", "numeric"),
    (("min_key_count: 20", "min_key_cuont: 20"), "features.min_key_cuont", "min_key_count"),
])
def test_a_typo_names_the_nearest_valid_key_at_its_place(tmp_path: Path, change: tuple[str, str],
                                                         where: str, nearest: str) -> None:
    text = (REPO / "configs/datasets/simulated.yaml").read_text().replace(*change)
    message = message_of(ConfigError, load_config, _write(tmp_path, text), DatasetConfig)
    line = next(line for line in message.splitlines() if line.strip().startswith(f"{where}:"))
    assert f"did you mean '{nearest}'?" in line
    assert "valid keys here:" in line and nearest in line.split("valid keys here:")[1]


def test_a_typo_inside_a_list_item_is_matched_against_the_item(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nevent_rules:\n  - {name: a, event_type: b, pionts: 3}\n"
                  "stage_thresholds: {mql: 1}\n")
    message = message_of(ConfigError, load_config, path, RulesConfig)
    assert "event_rules.0.pionts: unknown key; did you mean 'points'?" in message


def test_a_key_like_none_other_lists_the_valid_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\ncolour: blue\nstage_thresholds: {mql: 1}\n")
    message = message_of(ConfigError, load_config, path, RulesConfig)
    valid = ", ".join(RulesConfig.model_fields)
    assert f"colour: unknown key (valid keys here: {valid})" in message


@pytest.mark.parametrize(("read", "reason"), [
    ("{timezone: Europe/Berln}", "unknown time zone 'Europe/Berln'; did you mean 'Europe/Berlin'?"),
    ("{timestamp_format: 'YYYY-MM-DD'}", "has no strftime directive"),
    ("{sep: ';;'}", "read.sep"),
])
def test_read_options_are_checked_when_the_config_loads(tmp_path: Path, read: str,
                                                        reason: str) -> None:
    text = (REPO / "configs/datasets/simulated.yaml").read_text() + f"read: {read}\n"
    assert reason in message_of(ConfigError, load_config, _write(tmp_path, text), DatasetConfig)


def test_thresholds_must_increase_along_the_funnel(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nstage_thresholds: {lead: 20, mql: 10}\n")
    message = message_of(ConfigError, load_config, path, RulesConfig)
    assert "strictly increase" in message


def test_operator_value_shape_is_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, """
name: x
attribute_rules:
  - {name: size, field: employees, op: between, value: 10, points: 1}
stage_thresholds: {mql: 1}
""")
    message = message_of(ConfigError, load_config, path, RulesConfig)
    assert "attribute_rules.0" in message and "between needs a [low, high]" in message


def test_unknown_stage_name_lists_the_valid_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nstage_thresholds: {hot: 1}\n")
    message = message_of(ConfigError, load_config, path, RulesConfig)
    assert "stage_thresholds.hot" in message and "'subscriber'" in message


def test_snapshot_strategy_must_be_exactly_one(tmp_path: Path) -> None:
    text = (REPO / "configs/datasets/simulated.yaml").read_text().replace(
        "days_after_creation: [1, 7, 30, 90, 180, 365]",
        "days_after_creation: [1, 7, 30, 90, 180, 365]\n  every_days: 14")
    message = message_of(ConfigError, load_config, _write(tmp_path, text),
                                DatasetConfig)
    assert "snapshots" in message and "exactly one" in message


def test_events_shape_needs_its_sections(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nshape: events\nroot: .\nrules: r.yaml\n")
    message = message_of(ConfigError, load_config, path, DatasetConfig)
    assert "files" in message and "snapshots" in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert "cannot read" in message_of(ConfigError, load_config, missing,
                                              RulesConfig)
    bad = _write(tmp_path, "name: [unclosed\n")
    assert "not valid YAML" in message_of(ConfigError, load_config, bad,
                                                 RulesConfig)
    listing = _write(tmp_path, "- a\n- b\n")
    assert "mapping" in message_of(ConfigError, load_config, listing, RulesConfig)


def test_dataset_root_expands_the_data_dir() -> None:
    config = load_config(REPO / "configs/datasets/bank_marketing.yaml", DatasetConfig)
    assert config.root_dir(Path("/data")) == Path("/data/uci_bank_marketing")
    simulated = load_config(REPO / "configs/datasets/simulated.yaml", DatasetConfig)
    assert simulated.stage_names["marketingqualifiedlead"] is Stage.MQL


@pytest.mark.parametrize(("rule", "reason"), [
    ("{name: r, field: f, op: between, value: [10, 1], points: 1}", "low <= high"),
    ("{name: r, event_type: e, points: 1, cap: -5}", "greater than 0"),
])
def test_rule_bounds(tmp_path: Path, rule: str, reason: str) -> None:
    key = "event_rules" if "event_type" in rule else "attribute_rules"
    path = _write(tmp_path, f"name: x\n{key}:\n  - {rule}\nstage_thresholds: {{mql: 1}}\n")
    assert reason in message_of(ConfigError, load_config, path, RulesConfig)



@pytest.mark.parametrize(("written", "per_week", "share"), [
    ("250", 250.0, None), ("1,000", 1000.0, None), (40, 40.0, None), ("10%", None, 0.1),
    (" 2.5% ", None, 0.025), ("100%", None, 1.0)])
def test_capacity_reads_leads_per_week_or_a_share(written: object, per_week: float | None,
                                                  share: float | None) -> None:
    capacity = Capacity.model_validate(written)
    assert (capacity.per_week, capacity.share) == (per_week, share)


@pytest.mark.parametrize("written", ["0", "-5", "150%", "0%", "ten", "inf", "%"])
def test_capacity_refuses_what_is_neither(written: str) -> None:
    with pytest.raises(ValueError, match="neither a number of leads per week"):
        Capacity.model_validate(written)


def test_a_table_pickled_before_a_field_existed_unpickles_with_its_default() -> None:
    import pickle

    rules = RulesConfig(name="old", stage_thresholds={Stage.LEAD: 0},
                        attribute_rules=[{"name": "vp", "field": "f", "op": "eq",
                                          "value": "vp", "points": 5}])
    state = rules.__getstate__()
    del state["__dict__"]["starting_points"]  # as a bundle of an older version holds it
    old = RulesConfig.__new__(RulesConfig)
    old.__setstate__(state)
    assert old.starting_points == 0 and old == pickle.loads(pickle.dumps(rules))
