"""`vaelab evaluate`: --fid, the BCE floor of grey-level pixels and the --nll warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import epoch_records, lowest_epoch, sample_classifier
from vaelab.cli.evaluate_cmd import NOT_A_LIKELIHOOD
from vaelab.cli.main import main
from vaelab.data import load_splits
from vaelab.errors import VaelabError
from vaelab.evaluation.elbo import bce_floor
from vaelab.evaluation.sample_quality import DEFAULT_SAMPLES, sample_quality
from vaelab.losses import bernoulli_nll
from vaelab.runs.rebuild import load_run


def _train(out: Path, *extra: str) -> Path:
    code = main(["train", "--epochs", "1", "--z-dim", "2", "--dataset", "mnist-sample",
                 "--batch-size", "256", "--device", "cpu", "--out", str(out), *extra])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("runs") / "grey")


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("runs") / "binary", "--binarize", "dynamic")


@pytest.fixture(scope="module")
def classifier_dir(classifier_cache: Path) -> str:
    """Shared with the other tests (conftest.classifier_cache), so the classifier trains once."""
    return str(classifier_cache)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[dict[str, Any], str]:
    assert main(argv) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


# --- which checkpoint -----------------------------------------------------------------------


def test_evaluate_scores_the_best_checkpoint_unless_told_otherwise(
        overfitting_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On the validation split, each checkpoint scores as its epoch did in training."""
    records = epoch_records(overfitting_run)
    best_epoch, last_epoch = lowest_epoch(records, "val_loss"), records[-1]["epoch"]
    assert best_epoch < last_epoch, "the validation loss never rose: best and last coincide"
    run = str(overfitting_run)
    report, _ = _json(capsys, ["evaluate", run, "--split", "val", "--json"])
    assert report["checkpoint"] == "best"
    assert report["neg_elbo"] == pytest.approx(records[best_epoch - 1]["val_loss"], rel=1e-6)
    report, _ = _json(capsys, ["evaluate", run, "--split", "val", "--checkpoint", "last",
                               "--json"])
    assert report["checkpoint"] == "last"
    assert report["neg_elbo"] == pytest.approx(records[last_epoch - 1]["val_loss"], rel=1e-6)


# --- the BCE floor --------------------------------------------------------------------------


def test_bce_floor_is_the_mean_pixel_entropy() -> None:
    images = np.zeros((2, 2, 2), np.uint8)
    images[0] = [[0, 255], [51, 51]]  # 51/255 = 0.2: two pixels of entropy H(0.2)
    # H(0.2) = -0.2 ln 0.2 - 0.8 ln 0.8 = 0.2 * 1.6094379124341003 + 0.8 * 0.2231435513142097
    assert bce_floor(images) == pytest.approx(2 * 0.5004024235381879 / 2, rel=1e-12)
    assert bce_floor(torch.from_numpy(images)) == bce_floor(images)
    assert bce_floor(np.full((3, 28, 28), 255, np.uint8)) == 0.0  # binary pixels: no floor
    assert bce_floor(images[:0]) == 0.0
    # Images without a white pixel (every level below 255): 784 pixels at 128/255, each with
    # H(128/255) = 0.6931394911899866 nats.
    assert bce_floor(np.full((2, 28, 28), 128, np.uint8)) == pytest.approx(543.4213610929495,
                                                                          rel=1e-12)
    with pytest.raises(VaelabError, match="uint8"):
        bce_floor(images.astype(np.float32))


def test_bce_floor_is_the_bce_of_predicting_the_pixels_themselves() -> None:
    digits = load_splits("mnist-sample", None, 0).test_images[:50]
    x = torch.from_numpy(digits).double().div(255).unsqueeze(1)
    exact = torch.logit(x).clamp(-60, 60)  # sigmoid(±60) is 0 or 1 to float64 precision
    assert bernoulli_nll(exact, x).mean().item() == pytest.approx(bce_floor(digits), rel=1e-9)
    blurred = torch.logit(0.9 * x + 0.05)
    assert bernoulli_nll(blurred, x).mean().item() > bce_floor(digits) + 1.0


# --- vaelab evaluate ------------------------------------------------------------------------


def test_fid_json_reports_sample_quality(grey_run: Path, classifier_dir: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    report, _ = _json(capsys, ["evaluate", str(grey_run), "--fid", "--fid-samples", "500",
                               "--seed", "5", "--classifier-dir", classifier_dir,
                               "--limit", "200", "--json"])
    # The run's 500 prior samples drawn with --seed, against the whole test split (--limit
    # bounds only the ELBO's images), in the features of the dataset's cached classifier.
    classifier, _ = sample_classifier(Path(classifier_dir))
    test_images = load_splits("mnist-sample", None, 0).test_images
    expected = sample_quality(load_run(grey_run).model, classifier, test_images,
                              n_samples=500, seed=5)
    for measure in ("fd", "precision", "recall"):
        assert report[measure] == pytest.approx(getattr(expected, measure), rel=1e-9), measure
    assert (report["fd_samples"], report["fd_real"], report["pr_k"]) == (500, 2000, 3)
    assert report["binarized"] is False
    assert report["bce_floor"] == pytest.approx(bce_floor(test_images[:200]), rel=1e-12)
    assert report["recon_bce"] > report["bce_floor"]


def test_the_table_shows_the_floor_and_sample_quality(grey_run: Path, classifier_dir: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(grey_run), "--fid", "--fid-samples", "200", "--limit", "100",
                 "--classifier-dir", classifier_dir]) == 0
    out = capsys.readouterr().out
    for row in ("BCE floor", "Fréchet distance", "precision (k=3)", "recall (k=3)"):
        assert row in out
    assert "200 prior samples against the 2000 test images" in out


def test_nll_of_a_grey_level_run_warns_once(grey_run: Path, binary_run: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    nll = ["--nll", "--samples", "2", "--limit", "20", "--json"]
    report, err = _json(capsys, ["evaluate", str(grey_run), *nll])
    assert err.splitlines().count(NOT_A_LIKELIHOOD) == 1
    assert "not comparable with published binarised-MNIST" in err
    assert "--binarize dynamic" in err
    assert report["binarized"] is False and "nll" in report
    assert main(["evaluate", str(grey_run), "--nll", "--samples", "2", "--limit", "20"]) == 0
    assert capsys.readouterr().err.splitlines().count(NOT_A_LIKELIHOOD) == 1

    report, err = _json(capsys, ["evaluate", str(binary_run), *nll])
    assert NOT_A_LIKELIHOOD not in err
    assert report["binarized"] is True and "bce_floor" not in report
    report, err = _json(capsys, ["evaluate", str(grey_run), "--limit", "20", "--json"])
    assert NOT_A_LIKELIHOOD not in err  # no --nll, no warning


def test_only_grey_level_runs_show_the_floor(grey_run: Path, binary_run: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for run, grey in ((grey_run, True), (binary_run, False)):
        assert main(["evaluate", str(run), "--limit", "20"]) == 0
        out = capsys.readouterr().out
        assert ("BCE floor, entropy of the pixels" in out) is grey
        assert ("are not log-likelihoods" in out) is grey


def test_bits_per_dimension_only_for_binarised_runs(grey_run: Path, binary_run: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Bits per dimension are a likelihood's unit; a grey-level run's NLL is a cross-entropy."""
    nll = ["--nll", "--samples", "2", "--limit", "20"]
    for run, binary in ((grey_run, False), (binary_run, True)):
        report, _ = _json(capsys, ["evaluate", str(run), *nll, "--json"])
        assert ("bits_per_dim" in report) is binary
        assert main(["evaluate", str(run), *nll]) == 0
        assert ("bits/dim" in capsys.readouterr().out) is binary


def test_fid_trains_and_caches_a_missing_classifier(grey_run: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import vaelab.evaluation.classifier as classifier_module
    from vaelab.evaluation.classifier import (
        DEFAULT_SETTINGS,
        Classifier,
        ClassifierInfo,
        DigitCNN,
        classifier_filename,
    )

    def untrained(splits: Any, settings: Any = DEFAULT_SETTINGS, on_epoch: Any = None,
                  **_: Any) -> Classifier:
        """A stand-in for the minute-long training: what the cache does with it is tested."""
        on_epoch(1, 1, 2.3)
        torch.manual_seed(settings.seed)
        info = ClassifierInfo(dataset=splits.name, epochs=1, seed=settings.seed, n_train=0,
                              n_test=0, test_accuracy=0.1, seconds=0.0,
                              class_names=tuple(str(d) for d in range(10)), reject=True)
        # The layout train_classifier leaves and load_classifier restores.
        model = DigitCNN().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return Classifier(model.eval(), info)

    monkeypatch.setattr(classifier_module, "train_classifier", untrained)
    cache = tmp_path / "cache"
    argv = ["evaluate", str(grey_run), "--fid", "--fid-samples", "100", "--limit", "10",
            "--classifier-dir", str(cache), "--json"]
    first, err = _json(capsys, argv)
    assert "training the classifier on mnist-sample" in err
    assert "classifier epoch 1/1" in err
    assert (cache / classifier_filename("mnist-sample")).is_file()
    second, err = _json(capsys, argv)
    assert err == ""
    assert second["fd"] == first["fd"]  # the same cached classifier and seeded samples


@pytest.mark.parametrize("value", ["0", "3", "-5"])
def test_bad_fid_samples_is_a_one_line_error(grey_run: Path, value: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(grey_run), "--fid", "--fid-samples", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--fid-samples must be at least 4, got {value}" in err


def test_help_states_the_default_sample_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {DEFAULT_SAMPLES:,})" in help_text


@pytest.mark.parametrize("z_dim", [1, 2, 5, 10, 20])
def test_a_run_of_vaelab_0_1_0_scores_the_test_set_as_it_did(
        old_study: Path, z_dim: int, capsys: pytest.CaptureFixture[str]) -> None:
    """The best checkpoints of the 100-epoch study that vaelab 0.1.0 wrote (on an AVX2 CPU)
    give today the test losses its results.json recorded: measured here, every term within
    3e-6 nats of the record; 1e-4 allows other CPUs' float32 rounding, not a changed loss."""
    recorded = json.loads((old_study / "results.json").read_text())["runs"][str(z_dim)]["test"]
    capsys.readouterr()
    assert main(["evaluate", str(old_study / f"z{z_dim}"), "--json", "--device", "cpu"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["checkpoint"] == "best" and measured["n"] == recorded["n"] == 10_000
    for term in ("neg_elbo", "recon_bce", "kl"):
        assert measured[term] == pytest.approx(recorded[term], abs=1e-4), term
    assert measured["mse"] == pytest.approx(recorded["mse"], abs=1e-7)
