"""``vla-perception models`` sub-commands: make-tiny for real, fetch against a fake hub (no network here)."""
from pathlib import Path

import huggingface_hub

from vla_perception.cli.main import main
from vla_perception.core.models import FAMILIES, load_classifier, resolve_model_source


def test_make_tiny_writes_every_family_and_the_tiny_profile_loads_them(tmp_path, monkeypatch, capsys):
    assert main(["models", "make-tiny", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FAMILIES)
    assert (tmp_path / "clip" / "open_clip_model.safetensors").is_file()
    for family in ("grounding_dino", "owlvit", "blip_caption", "blip_vqa", "clipseg", "blip2", "hf_chat"):
        assert list((tmp_path / family).glob("*.safetensors")), family
        assert not list((tmp_path / family).glob("*.bin")), "tiny models are saved as safetensors only"
    assert f"VLA_PERCEPTION_MODELS={tmp_path}" in capsys.readouterr().out
    monkeypatch.setenv("VLA_PERCEPTION_MODELS", str(tmp_path))
    classifier = load_classifier(resolve_model_source("tiny", "clip"), device="cpu")
    assert classifier.model_id == str(tmp_path / "clip")


def test_fetch_asks_the_hub_for_safetensors_of_each_default_checkpoint(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, local_dir=None, **_):
        calls.append((repo_id, tuple(allow_patterns), local_dir))
        folder = Path(local_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"")
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert main(["models", "fetch", "--profile", "default", "--dest", str(tmp_path)]) == 0
    repos = {repo: (patterns, local_dir) for repo, patterns, local_dir in calls}
    assert set(repos) == {"laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "IDEA-Research/grounding-dino-tiny",
                          "google/owlvit-base-patch32", "Salesforce/blip-image-captioning-base",
                          "Salesforce/blip-vqa-base", "CIDAS/clipseg-rd64-refined"}
    assert repos["IDEA-Research/grounding-dino-tiny"][1] == str(tmp_path / "grounding_dino")
    assert all("*.safetensors" in patterns and not any(p.endswith(".bin") for p in patterns)
               for patterns, _ in repos.values())
    assert f"model:={tmp_path / 'clip'}" in capsys.readouterr().out


def test_fetch_falls_back_to_pickled_weights_only_when_a_repo_has_no_safetensors(tmp_path, monkeypatch):
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, local_dir=None, **_):
        calls.append(tuple(allow_patterns))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert main(["models", "fetch", "--family", "owlvit", "--dest", str(tmp_path)]) == 0
    assert len(calls) == 2 and "pytorch_model.bin" in calls[1]


def test_fetch_gets_the_large_vlm_backends_only_when_named(tmp_path, monkeypatch):
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, local_dir=None, **_):
        calls.append(repo_id)
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / "model.safetensors").write_bytes(b"")
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert main(["models", "fetch", "--dest", str(tmp_path)]) == 0
    assert not {"Salesforce/blip2-opt-2.7b", "HuggingFaceTB/SmolVLM-256M-Instruct"} & set(calls)
    calls.clear()
    assert main(["models", "fetch", "--family", "blip2", "--family", "hf_chat", "--dest", str(tmp_path)]) == 0
    assert calls == ["Salesforce/blip2-opt-2.7b", "HuggingFaceTB/SmolVLM-256M-Instruct"]
