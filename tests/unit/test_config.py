"""The config file: every bad setting is a ConfigError naming the file, the setting and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import DEFAULT_LABELS, Config, load_config
from workbench.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "workbench.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message, "one paragraph"
    return message


def test_the_shipped_config_and_an_empty_one_are_valid(tmp_path: Path) -> None:
    shipped = load_config(REPO / "configs" / "workbench.toml")
    assert shipped.labels == DEFAULT_LABELS
    (tmp_path / "empty.toml").write_text("")
    assert load_config(tmp_path / "empty.toml") == Config()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("datset = 'news'\n", "[datset] is not a known setting"),
        ("[model]\nnmae = 'en_core_web_sm'\n", "[model -> nmae] is not a known setting"),
        ("[labelstudio]\nproject_title = 'x'\nbatchsize = 10\n", "[labelstudio -> batchsize] is not a known setting"),
        ("[labelstudo]\nbatch_size = 10\n", "[labelstudo] is not a known setting"),
    ],
)
def test_unknown_keys_are_named(tmp_path: Path, text: str, expected: str) -> None:
    message = _error(tmp_path, text)
    assert expected in message and "check its spelling" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[labelstudio]\nbatch_size = 'big'\n", "[labelstudio -> batch_size] Input should be a valid integer"),
        ("[labelstudio]\nbatch_size = 0\n", "[labelstudio -> batch_size] Input should be greater than or equal to 1"),
        ("[labelstudio]\nannotations_per_task = 21\n", "[labelstudio -> annotations_per_task]"),
        ("labels = 'PERSON'\n", "[labels] Input should be a valid tuple"),
        ("labels = [1, 2]\n", "[labels -> 0] Input should be a valid string"),
        ("model = 'en_core_web_sm'\n", "[model] Input should be a valid dictionary"),
        ("[split]\ntest_fraction = 1.5\n", "[split -> test_fraction] Input should be less than 1"),
        ("[split]\nseed = 'thirteen'\n", "[split -> seed] Input should be a valid integer"),
        ("[merge]\npolicy = 'vote'\n",
         "[merge -> policy] unknown merge policy 'vote'; use one of ground_truth_majority_latest, latest"),
        ("[model]\nprocesses = 'many'\n", "[model -> processes"),
        ("dataset = '../elsewhere'\n", "[dataset] String should match pattern"),
        ("label_mapping = ['PER', 'PERSON']\n", "[label_mapping] Input should be a valid dictionary"),
    ],
)
def test_wrong_types_and_ranges_are_named(tmp_path: Path, text: str, expected: str) -> None:
    message = _error(tmp_path, text)
    assert expected in message and "Fix them" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("labels = []\n", "the label set is empty"),
        ("labels = ['PERSON', 'PERSON']\n", "label 'PERSON' is listed twice"),
        ("labels = ['PERSON', 'O']\n", "'O' is reserved"),
        ("labels = ['PER SON']\n", "label 'PER SON' is not a plain name"),
        ("labels = ['B-PER']\n", None),  # a hyphen is allowed in a name
        ("labels = ['']\n", "label '' is not a plain name"),
        ("labels = [' PERSON']\n", "label ' PERSON' is not a plain name"),
        ("labels = ['<b>PERSON</b>']\n", "is not a plain name"),  # would be markup in the label config
    ],
)
def test_invalid_label_names(tmp_path: Path, text: str, expected: str | None) -> None:
    if expected is None:
        (tmp_path / "ok.toml").write_text(text)
        assert load_config(tmp_path / "ok.toml").labels == ("B-PER",)
        return
    message = _error(tmp_path, text)
    assert "[labels]" in message and expected in message


def test_a_label_mapping_to_an_unknown_label_is_refused(tmp_path: Path) -> None:
    """An "unknown label": a mapping whose target is not in the label set would make rows with no ClassLabel."""
    message = _error(tmp_path, "labels = ['PERSON', 'ORG']\nlabel_mapping = { PER = 'PERSN' }\n")
    assert "label_mapping maps 'PER' to 'PERSN', which is not in labels" in message
    ok = tmp_path / "ok.toml"
    ok.write_text("labels = ['PERSON', 'ORG']\nlabel_mapping = { PER = 'PERSON' }\n")
    assert load_config(ok).label_mapping == {"PER": "PERSON"}


@pytest.mark.parametrize(
    ("description", "mapping"),
    [
        ("a swap of two labels", "{ PERSON = 'ORG', ORG = 'PERSON' }"),
        ("a chain that would stop half-way when applied once", "{ PER = 'ORG', ORG = 'PERSON' }"),
    ],
)
def test_a_label_mapping_that_renames_a_label_twice_is_refused(tmp_path: Path, description: str, mapping: str) -> None:
    message = _error(tmp_path, f"labels = ['PERSON', 'ORG']\nlabel_mapping = {mapping}\n")
    assert "a label is renamed once" in message, description


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = _error(tmp_path, "colour = 'red'\n[labelstudio]\nbatch_size = -1\n[split]\nseed = 'x'\n")
    assert "[colour]" in message and "[labelstudio -> batch_size]" in message and "[split -> seed]" in message


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "dataset = 'news'\nlabels = ['PERSON']]\nseeds = 'x'\n")
    assert "is not valid TOML" in message and "line" in message


def test_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    assert "is not valid TOML" in _error(tmp_path, "dataset = 'caf\xe9'\n".encode("latin-1"))


def test_a_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist\. Create it .* or pass --config PATH"):
        load_config(tmp_path / "nope.toml")


def test_a_config_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot be read \(Is a directory\)\. Point --config at the TOML file"):
        load_config(tmp_path)


def test_the_config_is_frozen_and_fingerprinted(tmp_path: Path) -> None:
    config = Config()
    with pytest.raises(ValueError):
        config.dataset = "other"  # type: ignore[misc]
    assert Config().fingerprint() == config.fingerprint()
    assert Config(labels=("PERSON",)).fingerprint() != config.fingerprint()
