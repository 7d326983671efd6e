"""A model or tokenizer name given by the user: a local path or a hub name, and its tokenizer loaded with an error
that names the option. Shared by eval, prepare, synth (``--tokenizer``) and preflight (``model.path``), so one rule
decides whether a missing name is a typo'd folder or a hub id."""

from __future__ import annotations

import pytest

from qwenlong_verl.model_source import TokenizerLoadError, load_tokenizer, looks_like_path


@pytest.mark.parametrize("name, is_path", [
    ("Qwen/Qwen2.5-7B", False), ("gpt2", False),  # hub ids: one part, or org/name
    ("./model", True), ("../m", True), ("/abs/m", True), ("~/m", True), ("runs/x/actor", True),
])
def test_a_path_is_told_from_a_hub_name(name, is_path):
    assert looks_like_path(name) is is_path


def test_a_missing_folder_or_a_file_is_one_line_naming_the_option(tmp_path):
    with pytest.raises(TokenizerLoadError, match=r"^--model \(as tokenizer\) '\./no/such': no such folder") as exc:
        load_tokenizer("./no/such", "--model (as tokenizer)")
    assert exc.value.exit_code == 2
    a_file = tmp_path / "tokenizer.json"
    a_file.write_text("{}")
    with pytest.raises(TokenizerLoadError, match="is a file; give the folder that holds tokenizer_config.json"):
        load_tokenizer(str(a_file))


def test_a_folder_without_a_tokenizer_names_the_cause(tmp_path):
    with pytest.raises(TokenizerLoadError, match=r"^--tokenizer '.*': cannot load a tokenizer \(") as exc:
        load_tokenizer(str(tmp_path))
    assert "\n" not in str(exc.value)


def test_the_tiny_model_folder_loads(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    assert tokenizer.decode(tokenizer("<think>x</think>")["input_ids"]) == "<think>x</think>"
