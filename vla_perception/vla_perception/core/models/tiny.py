"""Tiny random-weight models of every family, saved like real checkpoints (``models make-tiny DIR``).

They test plumbing and parity only: their outputs mean nothing. Each is well under a few MB and
builds in well under a second. Layout: DIR/{clip,grounding_dino,owlvit,blip_caption,blip_vqa,clipseg,blip2,hf_chat}.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

TINY_FAMILIES = ("clip", "grounding_dino", "owlvit", "blip_caption", "blip_vqa", "clipseg", "blip2", "hf_chat")
TINY_WORDS = [
    "a",
    "photo",
    "of",
    "the",
    "red",
    "blue",
    "green",
    "cup",
    "bottle",
    "duck",
    "mug",
    "cube",
    "tray",
    "person",
    "cat",
    "dog",
    "is",
    "there",
    "in",
    "gripper",
    "what",
    "color",
    "yes",
    "no",
    "table",
]
# One transformer layer of width 16: the text and vision towers of OWL-ViT, BLIP and CLIPSeg.
TINY_LAYER = {"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
TINY_VISION = {**TINY_LAYER, "image_size": 32, "patch_size": 8}
# BERT ids that Grounding DINO hard-codes ([PAD] [UNK] [CLS] [SEP] [MASK] "." "?") and BLIP's [DEC].
BERT_SPECIAL_IDS = {
    0: "[PAD]",
    100: "[UNK]",
    101: "[CLS]",
    102: "[SEP]",
    103: "[MASK]",
    1012: ".",
    1029: "?",
    1030: "[DEC]",
}


def write_bert_vocab(path: Path) -> dict:
    """Write a BERT WordPiece vocab with the special tokens at their real ids plus a few words."""
    vocab = [f"[unused{i}]" for i in range(1031)]
    for index, token in BERT_SPECIAL_IDS.items():
        vocab[index] = token
    vocab += (
        TINY_WORDS
        + list("abcdefghijklmnopqrstuvwxyz0123456789,!")
        + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    )
    path.write_text("\n".join(vocab) + "\n")
    return {token: index for index, token in enumerate(vocab)}


def make_tiny_clip(out: Path) -> Path:
    import open_clip
    from safetensors.torch import save_file

    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.CLIP(**model_cfg)
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors")
    )
    return out


def _tiny_bert_tokenizer(out: Path, cls):
    return cls(vocab=write_bert_vocab(out / "vocab.txt"), do_lower_case=True)


def make_tiny_grounding_dino(out: Path) -> Path:
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = _tiny_bert_tokenizer(out, BertTokenizer)
    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1],
        num_heads=[1, 1],
        window_size=4,
        out_features=["stage1", "stage2"],
        out_indices=[1, 2],
    )
    text = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        num_queries=20,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_feature_levels=2,
        encoder_n_points=1,
        decoder_n_points=1,
        max_text_len=32,
        use_timm_backbone=False,
    )
    GroundingDinoForObjectDetection(config).save_pretrained(out, safe_serialization=True)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def make_tiny_owlvit(out: Path) -> Path:
    from transformers import (
        CLIPTokenizer,
        OwlViTConfig,
        OwlViTForObjectDetection,
        OwlViTImageProcessor,
        OwlViTProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = _tiny_clip_tokenizer(out, CLIPTokenizer)
    tokenizer.model_max_length = 16  # the real OWL-ViT text limit
    config = OwlViTConfig(
        text_config={
            "vocab_size": tokenizer.vocab_size,
            **TINY_LAYER,
            "max_position_embeddings": 16,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
        },
        vision_config=dict(TINY_VISION),  # a copy: configs may add keys to the dict they get
        projection_dim=16,
    )
    OwlViTForObjectDetection(config).save_pretrained(out, safe_serialization=True)
    image_processor = OwlViTImageProcessor(
        size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32}
    )
    OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def _tiny_clip_tokenizer(out: Path, cls):
    """Build a byte-level BPE tokenizer of single characters plus start/end tokens (eos = last id)."""
    from open_clip.tokenizer import bytes_to_unicode

    chars = sorted(set(bytes_to_unicode().values()))
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return cls(vocab=vocab, merges=[], pad_token="!")


def _make_tiny_blip(out: Path, model_cls) -> Path:
    from transformers import BertTokenizer, BlipConfig, BlipImageProcessor, BlipProcessor

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = _tiny_bert_tokenizer(out, BertTokenizer)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    config = BlipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            **TINY_LAYER,
            "encoder_hidden_size": 16,
            "max_position_embeddings": 64,
            "bos_token_id": tokenizer.bos_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.sep_token_id,
        },
        vision_config=dict(TINY_VISION),  # a copy: configs may add keys to the dict they get
        projection_dim=16,
    )
    model_cls(config).save_pretrained(out, safe_serialization=True)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def make_tiny_blip_caption(out: Path) -> Path:
    from transformers import BlipForConditionalGeneration

    return _make_tiny_blip(out, BlipForConditionalGeneration)


def make_tiny_blip_vqa(out: Path) -> Path:
    from transformers import BlipForQuestionAnswering

    return _make_tiny_blip(out, BlipForQuestionAnswering)


def make_tiny_clipseg(out: Path) -> Path:
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        CLIPTokenizer,
        ViTImageProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = _tiny_clip_tokenizer(out, CLIPTokenizer)
    tokenizer.model_max_length = 77  # CLIP's text limit, as in the real checkpoint
    config = CLIPSegConfig(
        text_config={
            "vocab_size": tokenizer.vocab_size,
            **TINY_LAYER,
            "max_position_embeddings": 77,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
        },
        vision_config={**TINY_VISION, "num_hidden_layers": 2},  # CLIPSeg's decoder reads two layers
        projection_dim=16,
        extract_layers=[0, 1],
        reduce_dim=8,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=16,
        conditional_layer=0,
    )
    CLIPSegForImageSegmentation(config).save_pretrained(out, safe_serialization=True)
    image_processor = ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    )
    CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def _tiny_byte_tokenizer(special_tokens: list[str]):
    """A GPT-2 byte-level BPE tokenizer of single bytes (no merges) plus ``special_tokens``; eos = bos = unk."""
    from open_clip.tokenizer import bytes_to_unicode
    from transformers import GPT2Tokenizer

    vocab = {c: i for i, c in enumerate(sorted(set(bytes_to_unicode().values())))}
    for token in ("<|endoftext|>", "<pad>"):
        vocab[token] = len(vocab)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=[], bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                              unk_token="<|endoftext|>", pad_token="<pad>")
    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens})
    return tokenizer


def _causal_lm_ids(tokenizer) -> dict:
    return {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}


def make_tiny_blip2(out: Path) -> Path:
    """BLIP-2 with an OPT language model (as Salesforce/blip2-opt-*), 4 query tokens."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor, OPTConfig

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = _tiny_byte_tokenizer(["<image>"])
    text = OPTConfig(**_causal_lm_ids(tokenizer), hidden_size=16, ffn_dim=32, num_hidden_layers=1,
                     num_attention_heads=2, word_embed_proj_dim=16, max_position_embeddings=256)
    config = Blip2Config(
        vision_config=dict(TINY_VISION),
        qformer_config={**TINY_LAYER, "vocab_size": len(tokenizer), "encoder_hidden_size": 16,
                        "max_position_embeddings": 64},
        text_config=text.to_dict(),
        num_query_tokens=4,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    Blip2ForConditionalGeneration(config).save_pretrained(out, safe_serialization=True)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    Blip2Processor(image_processor=image_processor, tokenizer=tokenizer, num_query_tokens=4).save_pretrained(out)
    return out


# ChatML, with an image part rendered as the processor's image token (as LLaVA-OneVision/Qwen-style templates do).
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tiny_hf_chat(out: Path) -> Path:
    """A LLaVA (CLIP vision tower + Llama) with a chat template: the image-text-to-text family's shape."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tokenizer = _tiny_byte_tokenizer(["<image>", "<|im_start|>", "<|im_end|>"])
    text = LlamaConfig(**_causal_lm_ids(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**TINY_VISION, projection_dim=16),
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    LlavaForConditionalGeneration(config).save_pretrained(out, safe_serialization=True)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                   chat_template=TINY_CHAT_TEMPLATE).save_pretrained(out)
    return out


MAKERS = {
    "clip": make_tiny_clip,
    "grounding_dino": make_tiny_grounding_dino,
    "owlvit": make_tiny_owlvit,
    "blip_caption": make_tiny_blip_caption,
    "blip_vqa": make_tiny_blip_vqa,
    "clipseg": make_tiny_clipseg,
    "blip2": make_tiny_blip2,
    "hf_chat": make_tiny_hf_chat,
}


def build_tiny_model(family: str, path: Path) -> Path:
    """Build one family's tiny model at ``path`` atomically: a concurrent loader sees all of it or nothing."""
    scratch = path.parent / f".{path.name}.building-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    MAKERS[family](scratch)
    try:
        os.rename(scratch, path)
    except OSError:  # another process built it first
        shutil.rmtree(scratch, ignore_errors=True)
        if not path.exists():
            raise
    return path


def make_tiny_models(root, families=TINY_FAMILIES) -> Path:
    """Write every tiny model under ``root`` (one sub-directory per family); return ``root``."""
    root = Path(root).expanduser()
    for family in families:
        MAKERS[family](root / family)
    return root
