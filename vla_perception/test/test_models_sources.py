"""Model profiles, source resolution and the one clear error for missing weights (no network used)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vla_perception.core.models import FAMILIES, ModelNotAvailableError, load_classifier, load_detector
from vla_perception.core.models import load_segmenter, load_vlm, resolve_model_source
from vla_perception.core.models.sources import BUILTIN_PROFILES
from vla_perception.core.models.vlm_backends import load_vlm_backend

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
FETCH = "vla-perception models fetch --profile default"


def test_models_yaml_and_the_builtin_table_are_identical():
    with open(PACKAGE_ROOT / "config" / "models.yaml") as stream:
        assert yaml.safe_load(stream)["profiles"] == BUILTIN_PROFILES


def test_default_profile_names_the_real_checkpoints():
    ids = {family: resolve_model_source("default", family).model_id for family in FAMILIES}
    assert "ViT-B-32" in ids["clip"] and "laion2b_s34b_b79k" in ids["clip"]
    assert ids["grounding_dino"] == "IDEA-Research/grounding-dino-tiny"
    assert ids["owlvit"] == "google/owlvit-base-patch32"
    assert ids["blip_caption"] == "Salesforce/blip-image-captioning-base"
    assert ids["blip_vqa"] == "Salesforce/blip-vqa-base"
    assert ids["clipseg"] == "CIDAS/clipseg-rd64-refined"
    assert ids["blip2"] == "Salesforce/blip2-opt-2.7b"
    assert ids["hf_chat"] == "HuggingFaceTB/SmolVLM-256M-Instruct"


def test_tiny_profile_reads_the_models_directory_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VLA_PERCEPTION_MODELS", str(tmp_path))
    for family in FAMILIES:
        source = resolve_model_source("tiny", family)
        assert source.local_path == tmp_path / family


def test_overrides_name_local_paths_or_other_hub_ids(tmp_path):
    local = resolve_model_source("default", "grounding_dino", str(tmp_path))
    assert local.local_path == tmp_path and local.model_id == str(tmp_path)
    hub = resolve_model_source("tiny", "owlvit", "google/owlvit-large-patch14")
    assert hub.local_path is None and hub.model_id == "google/owlvit-large-patch14"
    clip = resolve_model_source("default", "clip", "ViT-L-14:openai")
    assert clip.local_path is None and "ViT-L-14" in clip.model_id and "openai" in clip.model_id


def test_unknown_profiles_and_families_are_refused():
    with pytest.raises(ValueError, match="profile"):
        resolve_model_source("huge", "clip")
    with pytest.raises(ValueError, match="family"):
        resolve_model_source("default", "yolo")


def test_tiny_models_that_cannot_be_built_name_the_command_that_makes_them(monkeypatch, tmp_path):
    (tmp_path / "a_file").write_text("")  # a tiny-model directory under a file: building there fails
    monkeypatch.setenv("VLA_PERCEPTION_MODELS", str(tmp_path / "a_file" / "nothing_here"))
    loaders = [lambda: load_classifier(resolve_model_source("tiny", "clip"), device="cpu"),
               lambda: load_detector(resolve_model_source("tiny", "grounding_dino"), device="cpu"),
               lambda: load_vlm(resolve_model_source("tiny", "blip_caption"), None, device="cpu"),
               lambda: load_segmenter(resolve_model_source("tiny", "clipseg"), device="cpu"),
               lambda: load_vlm_backend("blip2", "tiny", device="cpu"),
               lambda: load_vlm_backend("hf_chat", "tiny", device="cpu")]
    for load in loaders:
        with pytest.raises(ModelNotAvailableError) as error:
            load()
        assert "make-tiny" in str(error.value) and str(tmp_path / "a_file" / "nothing_here") in str(error.value)
        assert "network" not in str(error.value).replace("no network needed", "")


OFFLINE_PROBE = """
import json
from vla_perception.core.models import (ModelNotAvailableError, load_classifier, load_detector, load_segmenter,
                                        load_vlm, resolve_model_source)
from vla_perception.core.models.vlm_backends import load_vlm_backend
loads = {
    "clip": lambda s: load_classifier(s, device="cpu"),
    "grounding_dino": lambda s: load_detector(s, backend="grounding_dino", device="cpu"),
    "owlvit": lambda s: load_detector(s, backend="owlvit", device="cpu"),
    "blip_caption": lambda s: load_vlm(s, None, device="cpu"),
    "blip_vqa": lambda s: load_vlm(None, s, device="cpu"),
    "clipseg": lambda s: load_segmenter(s, device="cpu"),
    "blip2": lambda s: load_vlm_backend("blip2", device="cpu"),
    "hf_chat": lambda s: load_vlm_backend("hf_chat", device="cpu"),
}
messages = {}
for family, load in loads.items():
    try:
        load(resolve_model_source("default", family))
        messages[family] = "LOADED"
    except ModelNotAvailableError as error:
        messages[family] = str(error)
    except Exception as error:
        messages[family] = "WRONG ERROR " + type(error).__name__ + ": " + str(error)
print(json.dumps(messages))
"""


def test_offline_without_weights_every_family_names_the_fetch_command(tmp_path):
    """A fresh process, because huggingface_hub reads HF_HUB_OFFLINE when it is imported."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(PACKAGE_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", OFFLINE_PROBE], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    messages = json.loads(done.stdout.strip().splitlines()[-1])
    for family, message in messages.items():
        model_id = resolve_model_source("default", family).model_id.split(":")[0]
        assert FETCH in message, f"{family}: {message}"
        assert model_id in message, f"{family}: {message}"
        if family in ("blip2", "hf_chat"):  # fetched only when named
            assert f"--family {family}" in message, f"{family}: {message}"
        assert str(tmp_path / "hf" / "hub") in message, f"{family}: name the cache searched: {message}"


def test_open_clip_local_dir_spelling_is_a_local_path(tmp_path):
    """clip_node documents 'local-dir:PATH' (open_clip's spelling); it must not be read as a hub id."""
    source = resolve_model_source("default", "clip", f"local-dir:{tmp_path}")
    assert source.local_path == tmp_path.resolve()
    assert source.hub_id == ""
