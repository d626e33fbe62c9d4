"""The study on many cores and machines: worker processes (``jobs``) and a Dask cluster (``scheduler``)
write the rows a serial run writes, bit for bit, and resume like it."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lampref.bert import BertModel
from lampref.cli import main
from lampref.experiment import ExperimentError, grid, run_experiment
from lampref.experiment.encoder import corpus_pieces, sentences
from lampref.gpt2 import GPT2, GPT2Config, random_params

CFG = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=128)
CORPORA = {
    "first": np.random.default_rng(1).integers(0, CFG.vocab_size, 400),
    "second": np.random.default_rng(2).integers(0, CFG.vocab_size, 400),
}
SETTINGS = grid([4, 8], [2.0, 1.2], baseline="random")  # 6 settings: 12 rows over the two corpora


@pytest.fixture(scope="module")
def model() -> GPT2:
    params = random_params(CFG, 0, std=0.2)
    for blk in params.h:  # peaked attention: LAMP recomputes a part of the scores, not all or none
        blk.attn.c_attn.w[:, : 2 * CFG.n_embd] *= np.float32(2.0)
    return GPT2(params, CFG, row_block=16)


def _run(m: Any, out: Path, settings: Sequence[Any] = SETTINGS, **kw: Any) -> list[dict[str, Any]]:
    return run_experiment(
        m, CORPORA, settings, model_name="toy", seq_len=32, sequences=2, seed=7, out=out, progress=False, **kw
    )


def _lines(path: Path) -> tuple[str, list[str]]:
    """The header and the sorted row lines of a results CSV, as written (every column, every digit)."""
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    return header, sorted(rows)


@pytest.fixture(scope="module")
def serial(model: GPT2, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The serial run of SETTINGS on CORPORA: its CSV (read-only) and its rows."""
    out = tmp_path_factory.mktemp("serial") / "results.csv"
    return out, _run(model, out)


def test_worker_processes_write_the_serial_rows(
    model: GPT2, serial: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"
    rows = _run(model, out, jobs=2)
    assert rows == serial[1]  # the returned rows keep grid order
    assert _lines(out) == _lines(serial[0])
    assert len({r["baseline"] for r in rows}) == 2
    assert 0.0 < max(r["sparsity"] for r in rows) < 1.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


def test_a_dask_cluster_writes_the_serial_rows(
    model: GPT2, serial: tuple[Path, list[dict[str, Any]]], cluster: Any, tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"
    rows = _run(model, out, scheduler=cluster.scheduler_address)
    assert rows == serial[1]
    assert _lines(out) == _lines(serial[0])


def test_a_killed_run_resumes_in_parallel_without_recomputing(
    model: GPT2, serial: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """A run stopped after some rows (here: a run of a part of the grid) is finished by a parallel run that
    appends only the missing rows; a row cut short by a crash is dropped and computed again."""
    out = tmp_path / "results.csv"
    _run(model, out, SETTINGS[:2])
    first = out.read_text(encoding="utf-8")
    text = first[: first.rstrip("\n").rfind("\n") + 30]  # the last row cut short
    out.write_text(text, encoding="utf-8")
    rows = _run(model, out, jobs=2)
    assert rows == serial[1]
    after = out.read_text(encoding="utf-8")
    assert after.startswith(first[: first.rstrip("\n").rfind("\n") + 1])  # finished rows kept as written
    assert _lines(out) == _lines(serial[0])  # every row once: nothing finished was computed again
    assert _run(model, out, jobs=2) == rows  # a finished run starts no worker and writes nothing
    assert out.read_text(encoding="utf-8") == after


def test_an_encoder_study_in_worker_processes(minilm_wheel: Path, tmp_path: Path) -> None:
    minilm = BertModel.load(minilm_wheel)
    assert minilm.tokenizer is not None
    text = "The softmax turns scores into probabilities. A peaked row is sensitive to its top score. " * 6
    corpora = {"text": corpus_pieces(text, minilm.tokenizer)}
    sents = {"text": sentences(text, minilm.tokenizer, 4)}
    kw: dict[str, Any] = {"model_name": "minilm", "seq_len": 12, "sequences": 2, "progress": False}
    settings = grid([4], [2.0, 1.3])
    one = run_experiment(minilm, corpora, settings, out=tmp_path / "1.csv", sentences=sents, **kw)
    two = run_experiment(minilm, corpora, settings, out=tmp_path / "2.csv", sentences=sents, jobs=2, **kw)
    assert one == two
    assert _lines(tmp_path / "1.csv") == _lines(tmp_path / "2.csv")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"jobs": 0}, "jobs=0 is not valid; expected an integer >= 1"),
        ({"jobs": True}, "jobs=True is not valid"),
        ({"jobs": 2.0}, "jobs=2.0 is not valid"),
        ({"scheduler": ""}, "scheduler='' is not valid; expected the address of a Dask scheduler"),
        ({"scheduler": 8786}, "scheduler=8786 is not valid"),
        ({"jobs": 2, "scheduler": "tcp://127.0.0.1:8786"}, "jobs=2 and scheduler='tcp://127.0.0.1:8786'"),
    ],
)
def test_bad_jobs_and_scheduler_are_refused_before_anything_is_written(
    model: GPT2, tmp_path: Path, kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExperimentError, match=message.replace("(", r"\(")):
        _run(model, tmp_path / "r.csv", **kw)
    assert not (tmp_path / "r.csv").exists()


def test_a_scheduler_without_dask_names_the_extra(
    model: GPT2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    with pytest.raises(ExperimentError, match=r"pip install 'lampref\[distributed\]'"):
        _run(model, tmp_path / "r.csv", scheduler="tcp://127.0.0.1:8786")
    assert not (tmp_path / "r.csv").exists()


def test_an_unreachable_scheduler_is_an_experiment_error(model: GPT2, tmp_path: Path) -> None:
    dask = pytest.importorskip("dask")
    pytest.importorskip("dask.distributed")
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ExperimentError, match="cannot connect to the Dask scheduler at scheduler='tcp://"),
    ):
        _run(model, tmp_path / "r.csv", scheduler="tcp://127.0.0.1:9")


# ------------------------------------------------------------------------------------ command line
def _cli(model_dir: Path, tmp_path: Path, out: str, *extra: str) -> list[str]:
    corpus = tmp_path / "c.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 60)
    return [
        "experiment", "--model", str(model_dir), "--corpus", str(corpus), "--seq-len", "32",
        "--sequences", "2", "--m-bits", "4", "--tau", "2,1.2", "--out", str(tmp_path / out), "--no-progress",
        *extra,
    ]  # fmt: skip


def test_cli_jobs_writes_the_serial_rows(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_cli(model_dir, tmp_path, "serial")) == 0
    assert main(_cli(model_dir, tmp_path, "jobs", "--jobs", "2")) == 0
    assert "KL uniform" in capsys.readouterr().out
    assert _lines(tmp_path / "jobs" / "results.csv") == _lines(tmp_path / "serial" / "results.csv")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--jobs", "0"], "argument --jobs: expected an integer >= 1, got '0'"),
        (["--jobs", "two"], "argument --jobs: expected an integer >= 1, got 'two'"),
        (["--scheduler", " "], "argument --scheduler: expected the address of a Dask scheduler"),
        (
            ["--jobs", "2", "--scheduler", "tcp://h:8786"],
            "argument --scheduler: not allowed with argument --jobs",
        ),
    ],
)
def test_cli_bad_jobs_and_scheduler_are_argparse_errors(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(_cli(model_dir, tmp_path, "out", *extra))
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_scheduler_without_dask_names_the_extra(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    assert main(_cli(model_dir, tmp_path, "out", "--scheduler", "tcp://127.0.0.1:8786")) == 1
    err = capsys.readouterr().err
    assert "lampref experiment: --scheduler needs dask.distributed: pip install 'lampref[distributed]'" in err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_cli_scheduler_runs_on_a_dask_cluster(
    model_dir: Path, tmp_path: Path, cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_cli(model_dir, tmp_path, "serial")) == 0
    assert main(_cli(model_dir, tmp_path, "dask", "--scheduler", cluster.scheduler_address)) == 0
    assert _lines(tmp_path / "dask" / "results.csv") == _lines(tmp_path / "serial" / "results.csv")


def test_a_pickled_model_leaves_its_float64_copy_behind() -> None:
    """Workers receive the float32 parameters only; the reference plan's float64 copy is made again there."""
    import pickle

    from lampref.gpt2 import PrecisionPlan, default_model

    model = default_model()
    size = len(pickle.dumps(model))
    ref = model.logits(np.arange(8), PrecisionPlan.reference())  # makes the float64 copy
    assert len(pickle.dumps(model)) == size
    copy = pickle.loads(pickle.dumps(model))
    assert np.array_equal(copy.logits(np.arange(8), PrecisionPlan.reference()), ref)
