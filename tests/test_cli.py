"""The command line: `lampref formats` and `lampref generate` (run in-process through `main`)."""

from __future__ import annotations

import pytest

from lampref import get_format
from lampref.cli import main
from lampref.gpt2 import GPT2, GPT2Config, Tokenizer, random_params, save


def test_formats_table_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("fp64", "fp32", "tf32", "bf16", "fp16", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"):
        assert f"\n{name} " in out
    assert "448" in out
    assert str(get_format("e4m3").p) in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257)
    path = tmp_path_factory.mktemp("tiny")
    save(random_params(cfg, 1), cfg, path)
    return str(path)


def test_generate_prints_the_greedy_continuation(
    tiny_model_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = "Alan Turing theorized that"
    assert main(["generate", "--model", tiny_model_dir, "--tokens", "6", prompt]) == 0
    out = capsys.readouterr().out
    tok = Tokenizer()
    ids = tok.encode(prompt)
    expected = GPT2.load(tiny_model_dir).generate(ids, 6)[len(ids) :]
    assert out == prompt + tok.decode([int(t) for t in expected]) + "\n"


def test_generate_reports_a_missing_model_without_traceback(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--model", "/nonexistent/weights", "hi"]) == 1
    err = capsys.readouterr().err
    assert "/nonexistent/weights" in err
    assert "Traceback" not in err


def test_generate_rejects_bad_token_counts(tiny_model_dir: str) -> None:
    with pytest.raises(SystemExit, match="--tokens"):
        main(["generate", "--model", tiny_model_dir, "--tokens", "0", "hi"])
