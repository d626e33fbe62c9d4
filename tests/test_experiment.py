"""The LAMP study runner: resumable CSV, summary, plots, and the command line's error messages."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lampref.cli import main
from lampref.experiment import (
    AUTHORS_COLUMNS,
    CSV_COLUMNS,
    CSV_COLUMNS_V1,
    ExperimentError,
    grid,
    plot_results,
    read_results,
    run_experiment,
    summary_table,
    windows,
)
from lampref.experiment.results import writer_lock
from lampref.gpt2 import GPT2, GPT2Config, GPT2Params, random_params
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


def _run(
    m: Any,
    out: Path,
    settings: Sequence[Any] = SETTINGS,
    *,
    corpora: dict[str, Any] = CORPUS,
    model_name: str = "toy",
) -> list[dict[str, Any]]:
    return run_experiment(
        m, corpora, settings, model_name=model_name, seq_len=32, sequences=2, out=out, progress=False
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


def test_a_second_run_on_the_same_results_file_is_refused(model: GPT2, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    with writer_lock(out):  # a run in progress holds the file
        with pytest.raises(ExperimentError, match="another run is writing this results file"):
            _run(model, out, SETTINGS[:1])
        assert out.read_bytes() == b""  # nothing was appended
    rows = _run(model, out, SETTINGS[:1])  # the lock is released with the run
    assert [r["config_hash"] for r in read_results(out)] == [r["config_hash"] for r in rows]


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
    import lampref.experiment.run as experiment_run

    monkeypatch.setattr(experiment_run, "REF_CACHE_BYTES", cache_bytes)
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


def test_plots_of_a_grid_without_recomputation_warn_nothing(model: GPT2, tmp_path: Path) -> None:
    """A grid of tau = 2 only leaves the recomputation panels empty: they are drawn bare, with no legend
    warning (which the command line would print, and ``filterwarnings = error`` turns into a failure)."""
    rows = _run(model, tmp_path / "r.csv", grid([4, 8], [2.0], baseline=None))
    paths = plot_results(rows, tmp_path / "fig")
    assert [p.name for p in paths] == ["kl_vs_m.png", "flip_vs_m.png", "kl_vs_recomputed.png"]


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


# ------------------------------------------------------------------ the results folder and its identity
def _copy(model: GPT2, change: Callable[[dict[str, Any]], None] | None = None) -> GPT2:
    """A model with a copy of ``model``'s weights, changed in place by ``change``."""
    state = {k: np.array(v, copy=True) for k, v in model.params.named_arrays()}
    if change is not None:
        change(state)
    return GPT2(GPT2Params.from_state_dict(state, CFG.n_layer), model.config, row_block=model.row_block)


class NoCompute(Interrupting):
    """A model that refuses every forward pass: the run must stop (or finish) before computing anything."""

    def __init__(self, model: GPT2) -> None:
        super().__init__(model, budget=0)

    def logits(self, tokens: Any) -> Any:
        raise AssertionError("the reference forward pass ran")


@pytest.fixture(scope="module")
def finished(model: GPT2, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A finished run of SETTINGS on CORPUS with the fixture model (read-only: copy it before use)."""
    path = tmp_path_factory.mktemp("finished") / "results.csv"
    return path, _run(model, path)


def _refused(m: Any, out: Path, match: str, **kw: Any) -> None:
    """The run raises ExperimentError matching ``match``, computes nothing and leaves ``out`` as it was."""
    before = out.read_bytes() if out.is_file() else None
    args: dict[str, Any] = {"model_name": "toy", "seq_len": 32, "sequences": 2, "out": out, "progress": False}
    with pytest.raises(ExperimentError, match=match):
        run_experiment(
            NoCompute(m), kw.pop("corpora", CORPUS), kw.pop("settings", SETTINGS), **{**args, **kw}
        )
    if before is not None:
        assert out.read_bytes() == before


@settings(max_examples=25)
@given(data=st.data())
@example(data=None)
def test_issue11_item07_other_weights_under_the_same_name_are_refused(
    model: GPT2, finished: tuple[Path, list[dict[str, Any]]], data: Any
) -> None:
    """Resume trusted the model's name: other weights (one ulp anywhere) under the same name got A's rows."""
    names = [name for name, _ in model.params.named_arrays()]
    name = names[0] if data is None else data.draw(st.sampled_from(names), label="tensor")
    size = dict(model.params.named_arrays())[name].size
    index = 0 if data is None else data.draw(st.integers(0, size - 1), label="element")

    def nudge(state: dict[str, Any]) -> None:
        flat = state[name].reshape(-1)
        flat[index] = np.nextafter(flat[index], np.float32(np.inf))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.csv"
        shutil.copy(finished[0], out)
        _refused(_copy(model, nudge), out, "other model weights")


def test_issue11_item07_same_weights_resume_and_other_config_is_refused(
    model: GPT2, finished: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The identity is the content: a copy of the weights resumes (label aside); another config is refused."""
    out = tmp_path / "results.csv"
    shutil.copy(finished[0], out)
    rows = _run(NoCompute(_copy(model)), out, model_name="renamed")
    assert rows == finished[1]
    eps = GPT2(model.params, dataclasses.replace(CFG, layer_norm_epsilon=1e-3), row_block=model.row_block)
    _refused(eps, out, "other model weights or configuration")


# the windows of CORPUS actually used (seq_len 32, 2 sequences, 400 tokens: 12 windows, every 6th is taken)
USED = set(range(32)) | set(range(192, 224))


@settings(max_examples=40)
@given(position=st.integers(0, 399), shift=st.integers(1, CFG.vocab_size - 1))
@example(position=5, shift=1)
@example(position=100, shift=1)
def test_issue11_item07_a_corpus_edited_in_place_is_not_reported_as_done(
    model: GPT2, finished: tuple[Path, list[dict[str, Any]]], position: int, shift: int
) -> None:
    """A corpus edited in place under the same name was reported from the old rows; only tokens in the
    windows used determine the numbers, so an edit outside them keeps the rows."""
    tokens = CORPUS["toy"].copy()
    tokens[position] = (tokens[position] + shift) % CFG.vocab_size
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.csv"
        shutil.copy(finished[0], out)
        if position in USED:
            _refused(model, out, "the corpus 'toy' is not the one", corpora={"toy": tokens})
        else:
            rows = _run(NoCompute(model), out, corpora={"toy": tokens})
            assert rows == finished[1]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seed": 7}, "another seed"),
        ({"shuffle": True}, "another shuffle"),
        ({"seq_len": 16}, "another sequence length"),
        ({"sequences": 1}, "another number of sequences"),
    ],
)
def test_issue11_item08_rows_of_another_run_are_refused(
    model: GPT2,
    finished: tuple[Path, list[dict[str, Any]]],
    tmp_path: Path,
    change: dict[str, Any],
    match: str,
) -> None:
    """Rows of seed 7 and of seed 42 (or other sizes, or shuffled) were mixed in one file."""
    out = tmp_path / "results.csv"
    shutil.copy(finished[0], out)
    _refused(model, out, match, **change)


def test_issue11_item08_new_corpora_and_settings_join_a_run(
    model: GPT2, finished: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Adding a corpus or a setting to a run's file is allowed: only the new rows are computed."""
    out = tmp_path / "results.csv"
    shutil.copy(finished[0], out)
    more = {**CORPUS, "other": np.random.default_rng(2).integers(0, CFG.vocab_size, 100)}
    counting = Interrupting(model, budget=10**6)
    rows = _run(counting, out, corpora=more)
    assert counting.calls == 2 * len(SETTINGS)  # the new corpus only
    assert rows[: len(SETTINGS)] == finished[1]
    on_disk = read_results(out)
    assert [r["dataset"] for r in on_disk] == ["toy"] * len(SETTINGS) + ["other"] * len(SETTINGS)
    assert len({r["model_digest"] for r in on_disk}) == 1  # one run: one model
    assert len({(r["dataset"], r["corpus_digest"]) for r in on_disk}) == 2


def _header_file(path: Path, header: Sequence[str], rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(header), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in header})


@settings(max_examples=30)
@given(order=st.permutations(CSV_COLUMNS).filter(lambda p: tuple(p) != CSV_COLUMNS))
@example(order=list(AUTHORS_COLUMNS))
@example(order=list(CSV_COLUMNS_V1))
@example(order=["a", "b"])
@example(order=[*CSV_COLUMNS, "extra"])
def test_issue11_item08_rows_are_never_appended_under_another_header(
    model: GPT2, finished: tuple[Path, list[dict[str, Any]]], order: list[str]
) -> None:
    """Rows were appended under the authors' 11 columns, a reordered or an earlier lampref header."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.csv"
        _header_file(out, order, finished[1][:3])
        _refused(model, out, r"another output folder")


def test_issue11_item08_the_committed_results_are_read_and_never_appended_to(
    model: GPT2, tmp_path: Path
) -> None:
    """lampref's earlier 17-column CSVs (docs/results) stay readable; appending to them is refused."""
    results = Path(__file__).parents[1] / "docs" / "results"
    for path, count in ((results / "results.csv", 306), (results / "shuffled" / "results.csv", 34)):
        rows = read_results(path)
        assert len(rows) == count
        with open(path, newline="", encoding="utf-8") as f:
            assert tuple(next(csv.reader(f))) == CSV_COLUMNS_V1
        assert {r["baseline"] for r in rows if r["fake_lamp"]} == {"random"}  # lampref's baseline then
        assert {r["baseline"] for r in rows if not r["fake_lamp"]} == {"none"}
    out = tmp_path / "results.csv"
    out.write_bytes(b"".join((results / "results.csv").read_bytes().splitlines(keepends=True)[:4]))
    _refused(model, out, "earlier lampref")


def test_issue11_item08_summary_never_averages_two_runs(
    finished: tuple[Path, list[dict[str, Any]]],
) -> None:
    """plot summarised rows of seed 7 and seed 42 in one table without a word."""
    seven = [dict(r, seed=7, kl_div=2 * r["kl_div"]) for r in finished[1]]
    text = summary_table(seven + finished[1])
    assert text.startswith("these rows come from 2 runs that differ in seed")
    blocks = text.split("\n\n")
    assert blocks[1] == "seed=7:"
    assert blocks[4] == "seed=42:"
    assert blocks[2] == summary_table(seven).split("\n\n")[0]  # each table is its run's own
    assert blocks[5] == summary_table(finished[1]).split("\n\n")[0]
    renamed = [dict(r, model="renamed") for r in finished[1][:3]]  # a label: the same weights, one run
    assert summary_table(renamed + finished[1][3:]) == summary_table(finished[1])
    weights = [dict(r, model_digest="f" * 16) for r in finished[1]]  # other weights under the same label
    assert summary_table(weights + finished[1]).startswith("these rows come from 2 runs that differ in model")
    other = [dict(r, corpus_digest="0" * 16) for r in finished[1]]  # the same name, another corpus
    lines = summary_table(other + finished[1]).splitlines()
    assert {line.split()[0] for line in lines[1:] if line.startswith("toy")} == {
        "toy@00000000",
        f"toy@{finished[1][0]['corpus_digest'][:8]}",
    }


# ------------------------------------------------------------------ errors before any compute
@pytest.mark.parametrize(
    "case",
    [
        "out-is-a-folder",
        "parent-is-a-file",
        "not-utf8",
        "garbage-line",
        "bad-number",
        "bad-bool",
        "nul-byte",
        "folder-not-writable",
        "complete-csv-not-writable",
        "seed-negative",
        "seed-float",
        "seq-len-0",
        "seq-len-1",
        "sequences-0",
        "seq-len-beyond-context",
        "token-out-of-vocabulary",
        "no-settings",
        "duplicate-setting",
        "no-corpora",
    ],
)
def test_issue11_item10_bad_inputs_fail_before_compute(
    model: GPT2,
    finished: tuple[Path, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """A folder as --out, a file as its parent, an unwritable folder (even with a complete CSV), a CSV that
    is not UTF-8 or has a damaged line, a negative seed, sizes of 0: tracebacks, or found after compute."""
    out = tmp_path / "results.csv"
    kw: dict[str, Any] = {}
    text = finished[0].read_text(encoding="utf-8")
    match = {
        "out-is-a-folder": "is a folder",
        "parent-is-a-file": "is a file, not a folder",
        "not-utf8": r"line 3: byte 0xff is not UTF-8",
        "garbage-line": r"line 4: 1 fields",
        "bad-number": r"line 2, column kl_div: 'x' is not a number",
        "bad-bool": r"line 2, column shuffle",
        "nul-byte": "line 3",
        "folder-not-writable": "not writable",
        "complete-csv-not-writable": "cannot write to the results file",
        "seed-negative": "seed=-1",
        "seed-float": "seed=1.5",
        "seq-len-0": "seq_len=0",
        "seq-len-1": "seq_len=1",
        "sequences-0": "sequences=0",
        "seq-len-beyond-context": "n_positions=64",
        "token-out-of-vocabulary": "token id 128",
        "no-settings": "settings",
        "duplicate-setting": "twice",
        "no-corpora": "corpora is empty",
    }[case]
    lines = text.splitlines(keepends=True)
    if case == "out-is-a-folder":
        out.mkdir()
    elif case == "parent-is-a-file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "sub" / "results.csv"
    elif case == "not-utf8":
        out.write_bytes((lines[0] + lines[1]).encode() + b"\xff\n")
    elif case == "garbage-line":
        out.write_text("".join(lines[:3]) + "garbage\n" + "".join(lines[3:]), encoding="utf-8")
    elif case == "bad-number":
        out.write_text(
            lines[0] + lines[1].replace(f",{finished[1][0]['kl_div']!r},", ",x,"), encoding="utf-8"
        )
    elif case == "bad-bool":
        out.write_text(lines[0] + lines[1].replace(",False,", ",maybe,", 1), encoding="utf-8")
    elif case == "nul-byte":
        out.write_text("".join(lines[:2]) + "\0" + "".join(lines[2:]), encoding="utf-8")
    elif case in ("folder-not-writable", "complete-csv-not-writable"):
        shutil.copy(finished[0], out)
        target = out.parent if case == "folder-not-writable" else out
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == target else real(p, mode))
    elif case.startswith("seed"):
        kw = {"seed": -1 if case == "seed-negative" else 1.5, "shuffle": True}
    elif case.startswith(("seq-len", "sequences")):
        kw = {
            "seq-len-0": {"seq_len": 0},
            "seq-len-1": {"seq_len": 1},
            "sequences-0": {"sequences": 0},
            "seq-len-beyond-context": {"seq_len": 65},
        }[case]
    elif case == "token-out-of-vocabulary":
        kw = {"corpora": {"toy": np.full(400, CFG.vocab_size)}}
    elif case == "no-settings":
        kw = {"settings": []}
    elif case == "duplicate-setting":
        kw = {"settings": [*SETTINGS, SETTINGS[0]]}
    elif case == "no-corpora":
        kw = {"corpora": {}}
    _refused(model, out, match, **kw)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_issue11_item10_read_only_folder_with_a_complete_csv(
    model: GPT2, finished: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """A read-only output folder was found only when a row (or a plot) was written."""
    out = tmp_path / "ro" / "results.csv"
    out.parent.mkdir()
    shutil.copy(finished[0], out)
    out.parent.chmod(0o555)
    try:
        _refused(model, out, "not writable")
    finally:
        out.parent.chmod(0o755)


def test_issue11_item10_plots_into_a_file_are_an_error(
    finished: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Plots written where a file stands raised a bare OSError."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExperimentError, match="file"):
        plot_results(finished[1], tmp_path / "file" / "figures")


@given(
    tail=st.one_of(
        st.binary(max_size=200),
        st.lists(st.text(max_size=60), max_size=4).map(lambda ls: "\n".join(ls).encode("utf-8")),
        st.lists(
            st.lists(
                st.sampled_from(["", "x", "1", "-3", "2.0", "1e999", "nan", "True", "1;x", '"', ","]),
                min_size=1,
                max_size=len(CSV_COLUMNS) + 1,
            ).map(",".join),
            min_size=1,
            max_size=3,
        ).map(lambda ls: ("\n".join(ls) + "\n").encode()),
    )
)
@example(tail=b"\xff\n")
@example(tail=b"garbage\n")
@example(tail=b"\x00\n")
@example(tail=b'"unterminated\n')
@example(tail=b"\n\n\n")
def test_issue11_item10_a_damaged_csv_reads_or_raises_experiment_error(
    finished: tuple[Path, list[dict[str, Any]]], tail: bytes
) -> None:
    """Garbage in a results CSV gave UnicodeDecodeError, ValueError, KeyError or TypeError tracebacks."""
    good = finished[0].read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.csv"
        for data in (good + tail, good[: good.index(b"\n") + 1] + tail):
            path.write_bytes(data)
            try:
                rows = read_results(path)
            except ExperimentError as err:
                message = str(err)
            else:
                message = str(path)
                summary_table(rows)  # whatever was read can be summarised
                summary_table(rows, max_recomputed=0.5, markdown=True)
            assert str(path) in message  # an error names the file


def test_issue11_item10_read_results_names_the_file_and_line(
    finished: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Errors of read_results name the file, the line and the column at fault."""
    lines = finished[0].read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "r.csv"
    path.write_text("".join(lines[:3]) + lines[3].replace(",4,", ",four,", 1), encoding="utf-8")
    with pytest.raises(ExperimentError, match=r"r\.csv, line 4, column m_bits: 'four' is not an integer"):
        read_results(path)
    path.write_text("dataset,m_bits\n", encoding="utf-8")
    with pytest.raises(ExperimentError, match="lacks the columns fake_lamp, tau, kl_div"):
        read_results(path)


# ------------------------------------------------------------------ the authors' random baseline
def test_issue11_item14_grid_selects_the_baseline(model: GPT2) -> None:
    """The authors' baseline (draws over all T positions) could not be selected from grid."""
    from lampref.lamp import LampConfig

    def lamp_baseline(s: Any) -> Any:
        spec = s.plan(0).get("attn.score", 0)
        return spec.baseline if isinstance(spec, LampConfig) else "uniform"

    assert [lamp_baseline(s) for s in grid([4], [2.0, 1.5], baseline="authors")] == [
        "uniform",
        None,
        "random_authors",
    ]
    assert [lamp_baseline(s) for s in grid([4], [2.0, 1.5])] == ["uniform", None, "random"]
    assert [lamp_baseline(s) for s in grid([4], [2.0, 1.5], baseline=None)] == ["uniform", None]
    for bad in (True, False, "fake", "", "Random"):
        with pytest.raises(ExperimentError, match=r"baseline=.*expected one of: 'random', 'authors'"):
            grid([4], [1.5], baseline=bad)  # type: ignore[arg-type]
    for m_bits, taus in (([], [2.0]), ([4], []), ([4, 4], [2.0]), ([4.5], [2.0]), ([4], [float("nan")])):
        with pytest.raises(ExperimentError):
            grid(m_bits, taus)


def test_issue11_item14_the_authors_baseline_runs_and_is_named_in_the_csv(
    model: GPT2, tmp_path: Path
) -> None:
    """The CSV named only fake_lamp; the authors' baseline wastes draws on masked positions."""
    settings = [*grid([4], [1.2], baseline="random"), *grid([4], [1.2], baseline="authors")[1:]]
    rows = _run(model, tmp_path / "r.csv", settings)
    on_disk = read_results(tmp_path / "r.csv")
    assert [(r["baseline"], r["fake_lamp"]) for r in on_disk] == [
        ("none", False),
        ("random", True),
        ("authors", True),
    ]
    # the same count per row in layer 0; a draw of the authors' baseline in row t lands on one of the row's
    # t + 1 causal entries with probability (t + 1) / T, so it recomputes fewer (here about a third fewer)
    first = [float(str(r["layer_sparsity"]).split(";")[0]) for r in rows]
    assert first[0] == first[1]
    assert 0.3 * first[0] < first[2] < 0.8 * first[0]
    table = summary_table(on_disk)
    assert table.splitlines()[0].endswith("x random  x random (authors)")
    authors_csv = tmp_path / "authors.csv"
    _header_file(authors_csv, AUTHORS_COLUMNS, rows)
    assert [r["baseline"] for r in read_results(authors_csv)] == ["none", "authors", "authors"]


# ------------------------------------------------------------------ flip-rate resolution
@given(positions=st.integers(1, 10**7), extra=st.sampled_from([None, "authors"]))
@example(positions=1024, extra=None)
def test_issue11_item16_summary_states_positions_and_flip_resolution(positions: int, extra: Any) -> None:
    """The summary did not say that a flip rate moves in steps of 1/positions."""
    row = {"dataset": "d", "m_bits": 4, "positions": positions}
    rows = [
        dict(row, tau=2.0, fake_lamp=False, kl_div=1e-2, flip_rate=0.1, sparsity=0.0),
        dict(row, tau=1.5, fake_lamp=False, kl_div=1e-3, flip_rate=0.0, sparsity=0.1),
    ]
    if extra == "authors":  # the authors' CSVs do not record positions
        rows = [{k: v for k, v in r.items() if k != "positions"} for r in rows]
    note = summary_table(rows).split("\n\n")[-1]
    if extra == "authors":
        assert "resolution is unknown" in note
    else:
        step = float(note.split(" = ")[1].split()[0])
        assert note.startswith(f"{positions} positions per row")
        assert f"1/{positions}" in note
        assert step == pytest.approx(1 / positions, rel=0.06)


def test_issue11_item16_flip_rates_are_multiples_of_the_resolution(
    finished: tuple[Path, list[dict[str, Any]]],
) -> None:
    """Each row's flip rate is a whole number of flips over its positions, as the summary states."""
    for r in finished[1]:
        assert r["positions"] == 2 * 32
        flips = r["flip_rate"] * r["positions"]
        assert flips == round(flips)
    assert summary_table(finished[1]).endswith(
        "64 positions per row: a flip rate moves in steps of 1/64 = 1.6e-02 (one changed argmax)"
    )


# ------------------------------------------------------------------------------------ the sites study
def test_score_site_settings_keep_their_identity() -> None:
    """A setting of the score-site study hashes the fields it had before the sites columns, so rows of
    earlier runs keep their config_hash."""
    from lampref.experiment import Setting

    assert Setting(4, 1.5, "random").identity() == {
        "m_bits": 4, "tau": 1.5, "baseline": "random", "rule": "prefix", "accumulation": "strict"
    }  # fmt: skip
    s = Setting(4, 2.0, sites="attn.score,mlp.fc", lamp_sites="mlp.fc", gelu_tau=2.0, storage="bf16")
    assert s.identity()["sites"] == "attn.score,mlp.fc"
    assert s.identity()["gelu_tau"] == 2.0
    assert "norm_tau" not in s.identity()


def test_sites_settings_are_validated_and_normalised() -> None:
    from lampref.experiment import Setting

    assert Setting(4, 2.0, sites="all").sites.split(",")[-1] == "lm_head"
    assert Setting(4, 2.0, sites="mlp.fc", lamp_sites="mlp.fc").lamp_sites == ""  # recomputes nothing
    assert (
        Setting(4, 1.5, sites="mlp.fc,attn.score", lamp_sites="attn.score,mlp.fc").lamp_sites == "attn.score"
    )
    with pytest.raises(ExperimentError, match="not among the sites"):
        Setting(4, 2.0, sites="attn.score", lamp_sites="mlp.fc", gelu_tau=2.0)
    with pytest.raises(ExperimentError, match=r"needs attn\.score"):
        Setting(4, 1.5, sites="mlp.fc", lamp_sites="mlp.fc", gelu_tau=2.0)
    with pytest.raises(ExperimentError, match="lamp_sites"):
        Setting(4, 2.0, lamp_sites="attn.qkv")  # no look-ahead rule there
    with pytest.raises(ExperimentError, match="sites"):
        Setting(4, 2.0, sites="attn.scores")
    with pytest.raises(ExperimentError, match="gelu_tau"):
        Setting(4, 2.0, sites="mlp.fc", lamp_sites="mlp.fc", gelu_tau=-1.0)
    with pytest.raises(ExperimentError, match="storage"):
        Setting(4, 2.0, storage="bf17")


def test_sites_grid_gives_each_plan_once() -> None:
    settings = [
        *grid([4], [2.0, 1.5], sites="attn.score,mlp.fc", lamp_sites="attn.score"),
        *grid(
            [4], [2.0, 1.5], sites="attn.score,mlp.fc", lamp_sites="attn.score,mlp.fc", gelu_taus=[None, 2.0]
        ),
    ]
    plans = [s.plan(0) for s in settings]
    unique = list(dict.fromkeys(settings))
    assert len({(p, s.baseline) for p, s in zip(plans, settings, strict=True)}) == len(unique)
    assert sum(not s.recomputes() for s in unique) == 1  # one uniform row for both variants


def test_a_sites_run_writes_its_columns_and_tables(model: GPT2, tmp_path: Path) -> None:
    """A run over several site sets, LAMP variants and a storage format: the sites columns, the recomputed
    multiply-adds (checked by hand from the per-site fractions), the tables and the figures."""
    from lampref.experiment import SITE_COLUMNS, sites_table

    settings = [
        *grid([4], [2.0], sites="mlp.fc", lamp_sites="mlp.fc", gelu_taus=[None, 1.5]),
        *grid([4], [2.0], sites="all", baseline=None),
        *grid(
            [4], [2.0, 1.2], sites="attn.score,mlp.fc", lamp_sites="attn.score,mlp.fc", gelu_taus=[None, 1.5]
        ),
        *grid([4], [2.0], sites="attn.score", storage="bf16", baseline=None),
    ]
    settings = list(dict.fromkeys(settings))
    rows = _run(model, tmp_path / "r.csv", settings)
    back = read_results(tmp_path / "r.csv")
    assert [r["config_hash"] for r in back] == [r["config_hash"] for r in rows]
    assert set(SITE_COLUMNS) <= set(back[0])
    fc = next(r for r in back if r["sites"] == "mlp.fc" and r["gelu_tau"] == 1.5 and r["baseline"] == "none")
    frac = float(fc["site_sparsity"].split("=")[1])
    assert 0 < frac < 1
    assert fc["recomputed_macs"] == pytest.approx(
        frac, rel=1e-5
    )  # the only low-precision site: MACs = outputs x C
    joint = next(r for r in back if r["lamp_sites"] == "attn.score,mlp.fc" and r["baseline"] == "none")
    parts = dict(p.split("=") for p in joint["site_sparsity"].split(";"))
    T, C = 32, CFG.n_embd
    causal = T * (T + 1) // 2
    score, fcm = causal * C, T * 4 * C * C
    want = (float(parts["attn.score"]) * score + float(parts["mlp.fc"]) * fcm) / (score + fcm)
    assert joint["recomputed_macs"] == pytest.approx(want, rel=1e-5)
    assert next(r for r in back if r["storage"] == "bf16")["kl_div"] > 0
    table = sites_table(back)
    assert "uniform low precision at each set of sites" in table
    assert "attn.score [bf16]" in table
    assert "lowest error within each recompute budget" in table
    assert "random at mlp.fc" in table
    assert summary_table(back) == ""  # no row of the paper's study (the score site alone, no storage)
    names = {p.name for p in plot_results(back, tmp_path / "fig")}
    assert {"kl_vs_m_sites.png", "kl_vs_macs.png"} <= names


def test_a_csv_of_the_earlier_header_reads_with_the_site_defaults(tmp_path: Path) -> None:
    from lampref.experiment import CSV_COLUMNS_V3

    path = tmp_path / "old.csv"
    row = dict.fromkeys(CSV_COLUMNS_V3, "")
    row.update(model="m", seed="1", nbatches="1", dataset="d", shuffle="False", fake_lamp="False", m_bits="4",
               tau="2.0", kl_div="1e-3", flip_rate="0.1", sparsity="0", accumulation="strict", rule="prefix",
               seq_len="8", positions="8", baseline="none", config_hash="x")  # fmt: skip
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS_V3)
        w.writeheader()
        w.writerow(row)
    (got,) = read_results(path)
    assert (got["sites"], got["lamp_sites"], got["storage"], got["gelu_tau"]) == (
        "attn.score",
        "attn.score",
        "none",
        None,
    )
    with pytest.raises(ExperimentError, match="without the sites columns"):
        _run(GPT2(random_params(CFG, 0, std=0.2), CFG), path)


def test_cli_sites_options(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _cli(model_dir, tmp_path, "the cat sat on the mat. " * 80, 1, "--m-bits", "4", "--tau", "2,1.5",
                "--sites", "attn.score,mlp.fc", "mlp.fc", "--lamp-sites", "attn.score", "attn.score,mlp.fc",
                "--gelu-tau", "none,2", "--storage", "none", "bf16")  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "lowest error within each recompute budget" in out
    rows = read_results(tmp_path / "out" / "results.csv")
    assert {r["storage"] for r in rows} == {"none", "bf16"}
    assert {r["sites"] for r in rows} == {"attn.score,mlp.fc", "mlp.fc"}
    assert len({r["config_hash"] for r in rows}) == len(rows)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--sites", "mlp.fcc", "not a site"), ("--lamp-sites", "attn.qkv", "not a site"),
     ("--gelu-tau", "x", "expected numbers"), ("--storage", "bf17", "bf17")],
)  # fmt: skip
def test_cli_sites_options_are_checked(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["experiment", option, value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_study_with_mx_keys_and_queries(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lampref experiment --storage mxfp8`: the score site's queries and keys in MXFP8, LAMP on top."""
    pytest.importorskip("lampref.mx")
    args = _cli(model_dir, tmp_path, "the cat sat on the mat. " * 80, 1, "--m-bits", "8", "--tau", "2,1.5",
                "--storage", "mxfp8")  # fmt: skip
    assert main(args) == 0
    rows = read_results(tmp_path / "out" / "results.csv")
    assert {r["storage"] for r in rows} == {"mxfp8"}
    assert {r["sites"] for r in rows} == {"attn.score"}
    lamp = next(r for r in rows if r["tau"] == 1.5 and r["baseline"] == "none")
    assert 0 < lamp["sparsity"] < 1
    assert "attn.score [mxfp8]" in capsys.readouterr().out


def test_head_lamp_settings() -> None:
    """tau also drives LAMP at lm_head (the next-token softmax): its settings, plan and recorded sites."""
    from lampref.experiment import Setting
    from lampref.lamp_sites import HeadLamp

    s = Setting(4, 1.5, sites="lm_head", lamp_sites="lm_head")
    assert s.lamp_sites == "lm_head"
    assert isinstance(s.plan(0).get("lm_head"), HeadLamp)
    both = grid([4], [2.0, 1.5], sites="attn.score,lm_head", lamp_sites="attn.score,lm_head", baseline=None)
    assert [x.lamp_sites for x in both] == ["attn.score", "attn.score,lm_head"]
    with pytest.raises(ExperimentError, match="lm_head"):
        Setting(4, 1.5, sites="mlp.fc", lamp_sites="mlp.fc", gelu_tau=1.0)
