"""Tests of checkpoint metadata: round trip and rejection of foreign checkpoints."""

import pytest
import yaml

import parnassus
from parnassus.core import checkpoint
from parnassus.core.detector import Standardisation
from parnassus.exceptions import CheckpointError


def test_model_yaml_round_trip(tmp_path):
    norm = {"ht": Standardisation(700.0, 300.0)}
    checkpoint.write_model_yaml(
        tmp_path,
        {"backend": "smearing", "detector": "cmslike", "normalisation": checkpoint.normalisation_to_dict(norm)},
    )
    info = checkpoint.read_model_yaml(tmp_path, backend="smearing", detector="cmslike")
    assert info["parnassus_version"] == parnassus.__version__
    assert checkpoint.normalisation_from_dict(info["normalisation"]) == norm
    assert not list(tmp_path.glob(".model.*"))


@pytest.mark.parametrize(
    "backend, detector, message",
    [("diffusion", "cmslike", "holds a 'smearing' checkpoint"), ("smearing", "cms2011", "trained for detector 'cmslike'")],
)
def test_foreign_checkpoint_rejected(tmp_path, backend, detector, message):
    checkpoint.write_model_yaml(tmp_path, {"backend": "smearing", "detector": "cmslike"})
    with pytest.raises(CheckpointError, match=message):
        checkpoint.read_model_yaml(tmp_path, backend=backend, detector=detector)


def test_other_format_version_rejected(tmp_path):
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({"backend": "b", "detector": "d", "format_version": 99}))
    with pytest.raises(CheckpointError, match="format 99"):
        checkpoint.read_model_yaml(tmp_path, backend="b", detector="d")


def test_missing_and_corrupted_model_yaml(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        checkpoint.read_model_yaml(tmp_path, backend="b", detector="d")
    (tmp_path / "model.yaml").write_text("backend: [unclosed\n")
    with pytest.raises(CheckpointError, match="not valid YAML"):
        checkpoint.read_model_yaml(tmp_path, backend="b", detector="d")
    (tmp_path / "model.yaml").write_text("just a string\n")
    with pytest.raises(CheckpointError, match="mapping"):
        checkpoint.read_model_yaml(tmp_path, backend="b", detector="d")


def test_yaml_with_python_tags_is_not_executed(tmp_path):
    (tmp_path / "model.yaml").write_text("!!python/object/apply:os.system ['echo unsafe']\n")
    with pytest.raises(CheckpointError):
        checkpoint.read_model_yaml(tmp_path, backend="b", detector="d")
