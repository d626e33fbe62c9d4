"""The LAMP study runner: resumable CSV, summary, plots, and the command line's error messages."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lampref.cli import main
from lampref.experiment import (
    CSV_COLUMNS,
    ExperimentError,
    grid,
    plot_results,
    read_results,
    run_experiment,
    summary_table,
    windows,
)
from lampref.gpt2 import GPT2, GPT2Config, random_params, save
from lampref.metrics import flip_rate, kl_divergence

CFG = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=128)


@pytest.fixture(scope="module")
def model() -> GPT2:
    params = random_params(CFG, 0, std=0.2)
    for blk in params.h:  # peaked attention
        blk.attn.c_attn.w[:, : 2 * CFG.n_embd] *= np.float32(2.0)
    return GPT2(params, CFG, row_block=16)


CORPUS = {"toy": np.random.default_rng(1).integers(0, CFG.vocab_size, 400)}
SETTINGS = grid([4, 8], [2.0, 1.2], baseline="random")


class Interrupting:
    """A model that raises after a number of LAMP forward passes (a run killed midway)."""

    def __init__(self, model: GPT2, budget: int) -> None:
        self.model, self.budget, self.calls = model, budget, 0
        self.params, self.config, self.row_block = model.params, model.config, model.row_block

    def logits(self, tokens: Any) -> Any:
        return self.model.logits(tokens)

    def logits_and_stats(self, tokens: Any, plan: Any) -> Any:
        self.calls += 1
        if self.calls > self.budget:
            raise KeyboardInterrupt
        return self.model.logits_and_stats(tokens, plan)


def _run(m: Any, out: Path) -> list[dict[str, Any]]:
    return run_experiment(
        m, CORPUS, SETTINGS, model_name="toy", seq_len=32, sequences=2, out=out, progress=False
    )


def test_interrupted_run_resumes_without_recomputing(model: GPT2, tmp_path: Path) -> None:
    full = _run(model, tmp_path / "full.csv")
    out = tmp_path / "resumed.csv"
    killed = Interrupting(model, budget=5)  # 2 sequences per row: 2 rows done, the third interrupted
    with pytest.raises(KeyboardInterrupt):
        _run(killed, out)
    assert len(read_results(out)) == 2
    again = Interrupting(model, budget=10**6)
    rows = _run(again, out)
    assert again.calls == 2 * (len(SETTINGS) - 2)  # finished rows are not recomputed
    on_disk = read_results(out)
    assert len(on_disk) == len(SETTINGS) == len(rows)
    assert len({r["config_hash"] for r in on_disk}) == len(SETTINGS)
    for a, b in zip(
        sorted(on_disk, key=lambda r: r["config_hash"]),
        sorted(read_results(tmp_path / "full.csv"), key=lambda r: r["config_hash"]),
        strict=True,
    ):
        assert a == b
    assert _run(Interrupting(model, budget=0), out) == rows  # a finished run is read back, nothing computed
    assert full == rows


def test_a_row_cut_short_is_recomputed(model: GPT2, tmp_path: Path) -> None:
    """A crash in the middle of writing a row leaves a partial last line: it is dropped and recomputed."""
    out = tmp_path / "r.csv"
    full = _run(model, out)
    text = out.read_text(encoding="utf-8")
    out.write_text(text[: text.rstrip("\n").rfind("\n") + 40], encoding="utf-8")  # 40 chars of the last row
    again = Interrupting(model, budget=10**6)
    assert _run(again, out) == full
    assert again.calls == 2  # only the last row (2 sequences) is computed again
    assert out.read_text(encoding="utf-8") == text


def test_results_are_sane(model: GPT2, tmp_path: Path) -> None:
    rows = _run(model, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == CSV_COLUMNS
    by = {(r["m_bits"], r["tau"], r["fake_lamp"]): r for r in rows}
    for m in (4, 8):
        uniform, lamp, rnd = by[(m, 2.0, False)], by[(m, 1.2, False)], by[(m, 1.2, True)]
        assert uniform["sparsity"] == 0.0
        # same count per row as LAMP would select on the baseline's own forward pass: equal in layer 0, close
        # afterwards (the layers below differ)
        assert str(lamp["layer_sparsity"]).split(";")[0] == str(rnd["layer_sparsity"]).split(";")[0]
        assert lamp["sparsity"] == pytest.approx(rnd["sparsity"], rel=0.2)
        assert 0 < lamp["sparsity"] < 1
        assert lamp["kl_div"] < uniform["kl_div"]
        assert len(str(lamp["layer_sparsity"]).split(";")) == CFG.n_layer
    assert by[(8, 2.0, False)]["kl_div"] < by[(4, 2.0, False)]["kl_div"]
    table = summary_table(rows)
    assert table.splitlines()[0].startswith("dataset")
    assert len(table.split("\n\n")[0].splitlines()) == 3  # header, m = 4, m = 8
    assert table.split("\n\n")[1].startswith("64 positions per row")


@pytest.mark.parametrize("cache_bytes", [2**40, 0], ids=["cached-log-probs", "float32-reference"])
def test_rows_match_the_public_metrics(
    model: GPT2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_bytes: int
) -> None:
    """kl_div and flip_rate of a row are the position-weighted means of metrics.kl_divergence and
    metrics.flip_rate over the sequences, with or without the cached reference log-probabilities."""
    import lampref.experiment as experiment

    monkeypatch.setattr(experiment, "REF_CACHE_BYTES", cache_bytes)
    rows = _run(model, tmp_path / "r.csv")
    batch = windows(CORPUS["toy"], 32, 2, seed=42)
    for s, row in zip(SETTINGS, rows, strict=True):
        refs = [model.logits(seq) for seq in batch]
        tests = [model.logits_and_stats(seq, s.plan(42))[0] for seq in batch]
        kl = np.mean([kl_divergence(r, t) for r, t in zip(refs, tests, strict=True)])
        flips = np.mean([flip_rate(r, t) for r, t in zip(refs, tests, strict=True)])
        assert row["kl_div"] == pytest.approx(kl, rel=1e-12, abs=0)
        assert row["flip_rate"] == pytest.approx(flips, rel=1e-12, abs=0)


def test_plots_from_lampref_and_authors_csv(model: GPT2, tmp_path: Path) -> None:
    rows = _run(model, tmp_path / "r.csv")
    paths = plot_results(rows, tmp_path / "fig")
    assert [p.name for p in paths] == [
        "kl_vs_m.png",
        "flip_vs_m.png",
        "kl_vs_recomputed.png",
        "layer_recomputed.png",
    ]
    assert all(p.stat().st_size > 1000 for p in paths)
    authors = tmp_path / "authors.csv"
    cols = CSV_COLUMNS[:11]
    with open(authors, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in cols})
    assert main(["plot", str(authors), "--out", str(tmp_path / "fig2")]) == 0
    assert (tmp_path / "fig2" / "kl_vs_m.png").exists()


def test_windows_and_grid_validation() -> None:
    w = windows(np.arange(100), 10, 3, seed=0, shuffle=True)
    assert w.shape == (3, 10)
    assert sorted(w[0].tolist()) == list(range(10))
    with pytest.raises(ExperimentError, match="fewer than"):
        windows(np.arange(20), 10, 3, seed=0)
    with pytest.raises(ExperimentError, match="tau=3"):
        grid([4], [3.0])
    with pytest.raises(ExperimentError, match="m_bits=30"):
        grid([30], [2.0])
    with pytest.raises(ExperimentError, match="accumulation"):
        grid([4], [2.0], accumulation="nope")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257)  # the tokenizer's ids
    path = tmp_path_factory.mktemp("model")
    save(random_params(cfg, 0, std=0.2), cfg, path)
    return path


def _cli(model_dir: Path, tmp_path: Path, text: str, sequences: int, *extra: str) -> list[str]:
    """An `experiment` command line on a one-file corpus holding ``text``."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(text)
    return [
        "experiment",
        "--model",
        str(model_dir),
        "--corpus",
        str(corpus),
        "--seq-len",
        "32",
        "--sequences",
        str(sequences),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
        *extra,
    ]


def test_cli_experiment_runs_and_resumes(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _cli(
        model_dir, tmp_path, "def f(x):\n    return x + 1\n" * 60, 2, "--m-bits", "4", "--tau", "2,1.2"
    )
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "KL uniform" in out
    assert "results.csv" in out
    rows = read_results(tmp_path / "out" / "results.csv")
    assert len(rows) == 3
    assert main(args) == 0
    assert len(read_results(tmp_path / "out" / "results.csv")) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tau", "3"], "tau=3"),
        (["--m-bits", "40"], "m_bits=40"),
        (["--corpus", "/nonexistent/corpus"], "neither a bundled corpus"),
        (["--sequences", "1000"], "fewer than"),
    ],
)
def test_cli_experiment_errors_are_messages(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = _cli(model_dir, tmp_path, "hello world " * 100, 1)
    assert main([*base, *args]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_bad_numbers_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "--tau", "x"])
    assert exc.value.code == 2
    assert "expected numbers" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1.5", "-0.1", "x"])
def test_cli_bad_fraction_is_an_argparse_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plot", "results.csv", "--max-recomputed", value])
    assert exc.value.code == 2
    assert "expected a fraction between 0 and 1" in capsys.readouterr().err


def test_cli_plot_summary_at_a_recomputation_budget(
    model: GPT2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _run(model, tmp_path / "r.csv")
    lamp = [r for r in rows if r["tau"] < 2.0 and not r["fake_lamp"]]
    budget = max(r["sparsity"] for r in lamp)  # every LAMP row qualifies
    assert main(["plot", str(tmp_path / "r.csv"), "--max-recomputed", f"{budget:.6f}", "--markdown"]) == 0
    out = capsys.readouterr().out
    tables = [block for block in out.split("\n\n") if block.lstrip().startswith(("| dataset", "best LAMP"))]
    assert len(tables) == 2
    assert tables[0].splitlines()[1] == "|---|---|---|---|---|---|---|---|---|---|"
    assert tables[1].splitlines()[0].startswith("best LAMP with at most")
    assert main(["plot", str(tmp_path / "r.csv"), "--max-recomputed", "0"]) == 0
    out = capsys.readouterr().out.split("best LAMP")[1]
    assert "toy" not in out  # nothing recomputes 0% of the scores with tau < 2: no row


def test_cli_plot_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path / "none.csv")]) == 1
    err = capsys.readouterr().err
    assert "none.csv" in err
    assert "Traceback" not in err


def test_default_model_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import lampref.gpt2 as gpt2
    from lampref.errors import WeightsNotFoundError

    monkeypatch.setattr(gpt2, "DEFAULT_MODEL_DIR", tmp_path / "nothing")
    with pytest.raises(WeightsNotFoundError, match="embedded model"):
        gpt2.default_model()
    assert main(["experiment", "--quick", "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "embedded model" in capsys.readouterr().err


def test_embedded_model_is_trained_and_loads() -> None:
    import json

    import lampref.gpt2 as gpt2

    model = gpt2.default_model()
    assert model.config.vocab_size == 50257
    card = json.loads((gpt2.DEFAULT_MODEL_DIR / "training.json").read_text())
    for domain, loss in card["held_out_loss_nats"].items():  # better than the unigram baseline
        assert loss < card["unigram_baseline_nats"][domain]
    # lampref's own forward pass (not the trainer's) on the first 4 held-out windows of each corpus
    corpora = Path(gpt2.__file__).parents[1] / "data" / "corpora"
    tok = gpt2.Tokenizer()
    for domain, unigram in card["unigram_baseline_nats"].items():
        text = (corpora / f"{domain}.txt").read_text(encoding="utf-8")
        ids = np.asarray(tok.encode(text, disallowed_special=())[: 4 * 257]).reshape(4, 257)
        assert model.loss(ids) < unigram
    ids = gpt2.Tokenizer().encode("def f(x):\n    return x")
    assert model.logits(ids).shape == (len(ids), 50257)
