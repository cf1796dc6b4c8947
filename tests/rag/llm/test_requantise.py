"""The chat model's Q8_0 file, made by `ragline models prepare` from the shipped Q4_1
GGUF (real gguf-py, real file), and chosen by the provider when it is there."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from ragline.config import Settings
from ragline.rag.llm.local import LocalLLM, shipped_gguf
from ragline.rag.llm.requantise import find_chat_model, prepare_chat_model
from ragline.rag.providers import build_llm


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def test_prepare_makes_a_q8_0_copy_of_every_q4_1_tensor(models_dir: Path) -> None:
    assert find_chat_model(models_dir) is None
    path = prepare_chat_model(models_dir)
    assert find_chat_model(models_dir) == path
    assert prepare_chat_model(models_dir) == path  # made once
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left
    source, made = gguf.GGUFReader(shipped_gguf()), gguf.GGUFReader(path)
    assert [t.name for t in made.tensors] == [t.name for t in source.tensors]
    for old, new in zip(source.tensors, made.tensors, strict=True):
        q4_1 = old.tensor_type == gguf.GGMLQuantizationType.Q4_1
        assert new.tensor_type == (gguf.GGMLQuantizationType.Q8_0 if q4_1 else old.tensor_type)
    assert made.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
    template = "tokenizer.chat_template"
    assert made.fields[template].contents() == source.fields[template].contents()


def test_the_provider_uses_the_prepared_file_else_the_shipped_one(
    models_dir: Path, tmp_path: Path
) -> None:
    prepared = prepare_chat_model(models_dir)
    chosen = build_llm(Settings(_env_file=None, ragline_model_cache=models_dir))  # type: ignore[call-arg]
    assert isinstance(chosen, LocalLLM) and chosen.path == prepared
    assert chosen.name == "local:SmolLM2-135M-Instruct"
    empty = Settings(_env_file=None, ragline_model_cache=tmp_path)  # type: ignore[call-arg]
    fallback = build_llm(empty)
    assert isinstance(fallback, LocalLLM) and fallback.path == shipped_gguf()
