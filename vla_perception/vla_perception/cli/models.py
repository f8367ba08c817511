"""``vla-perception models fetch|make-tiny|list``: get real weights, or build the tiny test models.

``fetch`` downloads the ``default`` profile's checkpoints into the Hugging Face cache (what the
nodes read by default), or with ``--dest DIR`` into ``DIR/<family>`` folders that can be copied
to an offline robot and named by the nodes' ``model`` parameters. Only safetensors weights are
fetched where the repository has them. ``make-tiny DIR`` writes random-weight models of the
same architectures for tests (``VLA_PERCEPTION_MODELS=DIR`` + ``profile:=tiny``).
"""
from __future__ import annotations

import sys
from pathlib import Path

CONFIG_AND_TOKENIZER = ["*.json", "*.txt", "*.model"]
SAFE_WEIGHTS = ["*.safetensors"]
PICKLED_WEIGHTS = ["pytorch_model.bin", "open_clip_pytorch_model.bin"]  # loaded with weights_only=True


def add_arguments(parser, command):
    from vla_perception.core.models.sources import FAMILIES, TINY_ROOT_DEFAULT

    actions = parser.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser("fetch", help="download the real checkpoints (needs network)")
    fetch.add_argument("--profile", default="default", help="profile to fetch (default: default)")
    fetch.add_argument("--dest", help="download into DEST/<family> instead of the Hugging Face cache")
    fetch.add_argument("--family", action="append", choices=FAMILIES,
                       help="fetch only this family (repeatable; default: all but the large vlm_node "
                            "backends blip2 and hf_chat, which are fetched only when named here)")
    tiny = actions.add_parser("make-tiny", help="write tiny random-weight models for tests (no network)")
    tiny.add_argument("dir", nargs="?", default=TINY_ROOT_DEFAULT,
                      help="output directory, for VLA_PERCEPTION_MODELS (default: %(default)s)")
    actions.add_parser("list", help="show where each profile's models come from")


def hub_repo(source) -> str:
    """Return the Hugging Face repository of a source (open_clip tags map to their laion repos)."""
    if source.family != "clip" or source.hub_id.startswith("hf-hub:"):
        return source.hub_id.removeprefix("hf-hub:")
    import open_clip

    config = open_clip.get_pretrained_cfg(source.hub_id, source.pretrained)
    if not config.get("hf_hub"):
        raise SystemExit(f"{source.model_id}: open_clip knows no hub repository for it; fetch it by hand")
    return "/".join(config["hf_hub"].strip("/").split("/")[:2])


def download(repo_id: str, local_dir) -> Path:
    """Config, tokenizer and safetensors weights; the pickled weights only when there are no safetensors."""
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(repo_id, allow_patterns=CONFIG_AND_TOKENIZER + SAFE_WEIGHTS,
                                    local_dir=local_dir))
    if not any(folder.rglob("*.safetensors")):
        folder = Path(snapshot_download(repo_id, allow_patterns=CONFIG_AND_TOKENIZER + PICKLED_WEIGHTS,
                                        local_dir=local_dir))
    return folder


def fetch(args) -> int:
    from vla_perception.core.models.sources import FAMILIES, ON_REQUEST_FAMILIES, resolve_model_source

    failures = 0
    for family in args.family or [f for f in FAMILIES if f not in ON_REQUEST_FAMILIES]:
        source = resolve_model_source(args.profile, family)
        if source.local_path is not None:
            print(f"{family}: {source.model_id} is a local path; nothing to fetch")
            continue
        local_dir = str(Path(args.dest).expanduser() / family) if args.dest else None
        try:
            folder = download(hub_repo(source), local_dir)
        except Exception as error:  # noqa: BLE001 - report every family, then fail
            failures += 1
            print(f"{family}: FAILED to fetch {source.model_id}: {type(error).__name__}: {error}",
                  file=sys.stderr)
            continue
        print(f"{family}: {source.model_id} -> {folder}")
    if args.dest and not failures:
        dest = Path(args.dest).expanduser()
        print(f"\nCopy {dest} to the robot and point the nodes at it, e.g.\n"
              f"  clip_node: model:={dest / 'clip'}\n  detector_node: model:={dest / 'grounding_dino'}\n"
              f"  vlm_node: caption_model:={dest / 'blip_caption'} vqa_model:={dest / 'blip_vqa'}\n"
              f"  vlm_node backend:=blip2 or hf_chat (if fetched): model:={dest / 'blip2'} or {dest / 'hf_chat'}\n"
              f"  pose_node (mask_source:=clipseg): clipseg_model:={dest / 'clipseg'}")
    return 1 if failures else 0


def make_tiny(args) -> int:
    from vla_perception.core.models.tiny import make_tiny_models

    root = make_tiny_models(Path(args.dir).expanduser())
    for child in sorted(Path(root).iterdir()):
        size = sum(f.stat().st_size for f in child.rglob("*") if f.is_file())
        print(f"{child.name}: {child} ({size / 1e6:.1f} MB)")
    print(f"\nUse them with: export VLA_PERCEPTION_MODELS={root}  and the nodes' parameter profile:=tiny")
    return 0


def list_profiles(args) -> int:
    from vla_perception.core.models.sources import FAMILIES, load_profiles, resolve_model_source

    for profile in load_profiles():
        print(f"{profile}:")
        for family in FAMILIES:
            source = resolve_model_source(profile, family)
            where = "local" if source.local_path is not None else "hub"
            missing = source.local_path is not None and not source.local_path.exists()
            present = "  (missing)" if missing else ""
            print(f"  {family:<15} {where:<5} {source.model_id}{present}")
    return 0


def run(args) -> int:
    return {"fetch": fetch, "make-tiny": make_tiny, "list": list_profiles}[args.action](args)
