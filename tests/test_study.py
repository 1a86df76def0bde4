"""`vaelab study` end to end on mnist-sample, resuming, and `vaelab report` without training.

The module trains one reduced quick study (all five z_dims, one epoch each, batch 128, 2,000
prior samples) once and checks its report, figures and run directories, and a two-seed study of
z_dims 1 and 2; a browser test opens the report in Chromium.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import (
    OVERFITTING_DIGITS,
    OVERFITTING_FLAGS,
    OVERFITTING_Z_DIM,
    REPO,
    epoch_records,
    lowest_epoch,
    torch_threads,
    write_sample_digits,
)
from vaelab.cli.main import main
from vaelab.data import load_splits
from vaelab.runs.rebuild import load_run
from vaelab.study.analysis import figure_names
from vaelab.study.config import STUDY_FILE, StudyConfig
from vaelab.study.report import SECTIONS
from vaelab.study.sweep import SweepProgress, fit_each, train_sweep
from vaelab.training import RunOptions

Z_DIMS = (1, 2, 5, 10, 20)
# About 3 minutes on an idle 2-core machine (plus the first-ever classifier training); the
# generous limit only guards against a busy machine.
LONG = pytest.mark.timeout(3600)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"

PRIOR_SAMPLES = 2000  # the quick study's 10,000 would cost the suite half a minute more
# Pixel size of each figure of a five-z_dim study: matplotlib figures are drawn at their pixel
# size (820 wide at most); picture grids have 30-pixel cells plus 2 of padding, doubled.
EXPECTED_SIZES = {
    "loss_curves.png": (820, 360),
    "reconstructions.png": (820, 380),
    "active_units.png": (820, 370),
    "prior_classes.png": (820, 370),
    "elbow.png": (820, 380),
    "rate_distortion.png": (820, 440),
    "strip_1d.png": (820, 400),
    "manifold_2d.png": (708, 688),
    "manifold_data_2d.png": (708, 688),
    "manifold_quantiles.png": (728, 704),
    "digit_map_2d.png": (820, 444),
    **{f"samples_z{z}.png": (604, 604) for z in Z_DIMS},
    **{f"interpolations_z{z}.png": (604, 484) for z in Z_DIMS},
}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR, after checking the signature and chunk CRCs."""
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        tag = data[offset + 4:offset + 8]
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert zlib.crc32(tag + body) == crc, f"{path.name}: bad CRC in {tag!r}"
        chunks.append(tag)
        offset += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _mtimes(study: Path) -> dict[str, int]:
    return {p.relative_to(study).as_posix(): p.stat().st_mtime_ns
            for p in sorted(study.glob("z*/*.safetensors"))}


def _quick_study(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest,
                 name: str, *flags: str) -> Path:
    """`vaelab study --quick FLAGS` on the CPU, its classifier cached across test runs."""
    study = tmp_path_factory.mktemp("study") / name
    cache = request.getfixturevalue("classifier_cache")
    code = main(["study", "--quick", *flags, "--device", "cpu", "--out", str(study),
                 "--classifier-dir", str(cache)])
    assert code == 0
    return study


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[Path]:
    """`vaelab study --quick`, reduced to one epoch at batch 128 so the suite stays short."""
    yield _quick_study(tmp_path_factory, request, "quick", "--epochs", "1", "--batch-size",
                       "128", "--prior-samples", str(PRIOR_SAMPLES))


@pytest.mark.slow
@LONG
def test_quick_study_writes_runs_report_and_figures(quick_study: Path) -> None:
    config = json.loads((quick_study / "study.json").read_text())
    train = config["train"]
    assert train["dataset"] == "mnist-sample" and train["model"] == "seed"
    assert tuple(config["z_dims"]) == Z_DIMS and train["epochs"] == 1
    # No --classifier-epochs: the classifier's default, 6 passes over the sample's 10,000.
    assert config["classifier_epochs"] is None
    classifier = json.loads((quick_study / "results.json").read_text())["classifier"]
    assert (classifier["epochs"], classifier["n_train"]) == (6, 10_000)
    html = (quick_study / "report.html").read_text()
    markdown = (quick_study / "report.md").read_text()
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html
        assert f"## {section}" in markdown
    figures = figure_names(Z_DIMS)
    assert sorted(figures) == sorted(p.name for p in (quick_study / "figures").glob("*.png"))
    checks = json.loads((quick_study / "results.json").read_text())["figure_checks"]
    assert sorted(checks) == sorted(figures)
    for name in figures:
        width, height = png_size(quick_study / "figures" / name)
        assert (width, height) == EXPECTED_SIZES[name], name
        # Shown at exactly its pixel size, with every text at least 10 px tall and clear.
        assert f'<figure id="{name}"><img' in html
        assert re.search(rf'<figure id="{re.escape(name)}"><img alt="[^"]*" width="{width}" '
                         rf'height="{height}" src=', html), name
        assert (checks[name]["width"], checks[name]["height"]) == (width, height)
        smallest = checks[name]["smallest_text_px"]
        assert smallest is None or smallest >= 10, name
        assert checks[name]["overlaps"] == 0 and checks[name]["cut_off"] == 0, name
        assert f"(figures/{name})" in markdown
    # Self-contained: every image inlined, nothing fetched.
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r'(src|href)="(?!data:)', html)


@pytest.mark.slow
@LONG
def test_report_numbers_come_from_the_runs(quick_study: Path, classifier_cache: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    results = json.loads((quick_study / "results.json").read_text())
    markdown = (quick_study / "report.md").read_text()
    threshold = json.loads((quick_study / "study.json").read_text())["active_threshold"]
    runs = {r["z_dim"]: r for r in results["runs"]}
    assert sorted(runs) == list(Z_DIMS) and results["seeds"] == [1]
    test_images = torch.from_numpy(load_splits("mnist-sample", None, 0).test_images)
    for z in Z_DIMS:
        # The first prior draw of the run with seed 1 is what `evaluate --fid --seed 1` draws.
        assert main(["evaluate", str(quick_study / f"z{z}"), "--split", "test", "--json",
                     "--device", "cpu", "--fid", "--fid-samples", str(PRIOR_SAMPLES),
                     "--seed", "1", "--classifier-dir", str(classifier_cache)]) == 0
        measured = json.loads(capsys.readouterr().out)
        run = runs[z]
        assert run["test"]["neg_elbo"] == pytest.approx(measured["neg_elbo"], rel=1e-6)
        assert f"| {z} | {run['test']['neg_elbo']:.2f} | {run['test']['recon_bce']:.2f} |" \
            in markdown
        # Active units (Burda et al. 2016): the variance over the test images of each unit's
        # posterior mean, from the run's own encoder, above the study's threshold.
        model = load_run(quick_study / f"z{z}", device="cpu").model
        with torch.no_grad():
            mu, _ = model.encode(test_images.unsqueeze(1).float() / 255)
        activity = mu.double().var(0, correction=0).numpy()
        assert run["unit_activity"] == pytest.approx(activity, rel=1e-4, abs=1e-9)
        assert run["active_units"] == int((activity > threshold).sum())
        assert sum(run["prior_counts"]) == PRIOR_SAMPLES  # ten digits and "unclear"
        quality = run["sample_quality"]
        for measure in ("fd", "precision", "recall"):
            assert quality[measure] == pytest.approx(measured[measure], rel=1e-6), measure
        assert quality["fd_samples"] == measured["fd_samples"] == PRIOR_SAMPLES
    elbow = results["elbow"]["measures"]
    for found in elbow.values():
        assert all(at in Z_DIMS for at in found["at"])
        cells = [str(a) if r else f"not reached ({a})"
                 for a, r in zip(found["at"], found["reached"], strict=True)]
        assert f"| {found['label']} | " + " | ".join(cells) + " |" in markdown
    assert results["pixels"]["binarize"] == "none" and 30 < results["pixels"]["bce_floor"] < 60
    assert "not log-likelihoods" in markdown
    assert results["classifier"]["dataset"] == "mnist-sample"
    prior = results["one_d"]["prior range"]
    assert {i["label"] for i in prior["intervals"]} - {-1} == set(prior["digits"])
    assert sum(prior["shares"]) == pytest.approx(1.0)
    assert 0 <= results["two_d"]["beyond_share"] <= 1
    conclusions = markdown.split("## Conclusions", 1)[1]
    assert f"{runs[1]['test']['neg_elbo']:.2f}" in conclusions


@pytest.mark.slow
@LONG
def test_rerun_and_report_train_nothing(quick_study: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = _mtimes(quick_study)
    assert len(before) == 2 * len(Z_DIMS)
    html_before = (quick_study / "report.html").stat().st_mtime_ns
    assert main(["report", str(quick_study)]) == 0
    assert _mtimes(quick_study) == before
    assert (quick_study / "report.html").stat().st_mtime_ns > html_before
    capsys.readouterr()
    assert main(["study", "--out", str(quick_study)]) == 0  # settings come from study.json
    err = capsys.readouterr().err
    assert err.count("finished earlier, not retrained") == len(Z_DIMS)
    assert _mtimes(quick_study) == before


@pytest.mark.browser
@pytest.mark.slow
@LONG
def test_report_opens_in_chromium_with_a_clean_console(quick_study: Path,
                                                       tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    messages: list[str] = []
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: messages.append(f"requestfailed: {r.url}"))
        page.goto((quick_study / "report.html").as_uri())
        page.wait_for_load_state("load")
        headings = page.locator("h2").all_inner_texts()
        loaded = page.evaluate("Array.from(document.images).filter("
                               "i => i.complete && i.naturalWidth > 0).length")
        total = page.evaluate("document.images.length")
        # Every figure is displayed at exactly its pixel size: nothing scales it.
        unscaled = page.evaluate("Array.from(document.images).filter(i => i.width === "
                                 "i.naturalWidth && i.height === i.naturalHeight).length")
        page.screenshot(path=str(ARTIFACTS / "study-report.png"), full_page=False)
        context.close()
    assert headings == list(SECTIONS)
    assert total == len(figure_names(Z_DIMS)) and loaded == total and unscaled == total
    assert messages == []


@pytest.fixture(scope="module")
def two_seed_study(tmp_path_factory: pytest.TempPathFactory,
                   request: pytest.FixtureRequest) -> Iterator[Path]:
    """Two seeds of z_dims 1 and 2, tiny settings: the report's uncertainty in a few seconds."""
    yield _quick_study(tmp_path_factory, request, "seeds", "--z-dims", "1,2", "--seeds", "2",
                       "--epochs", "1", "--batch-size", "512", "--prior-samples", "500")


@pytest.mark.slow
@LONG
def test_two_seeds_give_error_bars_bands_and_per_seed_elbows(two_seed_study: Path) -> None:
    results = json.loads((two_seed_study / "results.json").read_text())
    markdown = (two_seed_study / "report.md").read_text()
    assert sorted(p.name for p in two_seed_study.iterdir() if p.is_dir()) == [
        "figures", "z1", "z1-seed2", "z2", "z2-seed2"]
    assert results["seeds"] == [1, 2]
    assert sorted((r["z_dim"], r["seed"]) for r in results["runs"]) == [
        (1, 1), (1, 2), (2, 1), (2, 2)]
    for z in (1, 2):
        row = results["sweep"][str(z)]
        values = row["neg_elbo"]["values"]
        assert row["neg_elbo"]["mean"] == pytest.approx(sum(values) / 2)
        assert row["neg_elbo"]["sd"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
        assert f"| {z} | {row['neg_elbo']['mean']:.2f} ± {row['neg_elbo']['sd']:.2f} | " \
            f"{row['recon_bce']['mean']:.2f} ± {row['recon_bce']['sd']:.2f} |" in markdown
    for found in results["elbow"]["measures"].values():
        assert sorted(found["per_seed"]) == ["1", "2"]
        assert f"| {found['label']}, seed 2 |" in markdown
    assert "Each seed's own numbers" in markdown
    assert "the shaded band spans the lowest to the highest seed" in markdown
    assert "no number here has an error bar" not in markdown
    assert all(c["overlaps"] == 0 and c["cut_off"] == 0
               for c in results["figure_checks"].values())


class Recorder(SweepProgress):
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def run_skipped(self, config: object) -> None:
        self.events.append(("skipped", config.z_dim))  # type: ignore[attr-defined]

    def run_start(self, config: object, index: int, total: int, status: str) -> None:
        self.events.append((status, config.z_dim))  # type: ignore[attr-defined]


def test_interrupted_sweep_resumes_without_retraining(tiny_dataset: str, tiny_dataset_dir: Path,
                                                      tmp_path: Path) -> None:
    from vaelab.training import TrainingInterrupted

    config = StudyConfig.from_dict(dict(out=str(tmp_path / "study"), z_dims=(1, 3), model="mlp",
                                        dataset=tiny_dataset, data_dir=str(tiny_dataset_dir),
                                        epochs=2, batch_size=100, device="cpu"))
    steps = {"n": 0}

    def stop_in_second_run() -> bool:  # 6 steps per epoch: stop in z3's first epoch
        steps["n"] += 1
        return steps["n"] == 15

    first = Recorder()
    with pytest.raises(TrainingInterrupted):
        train_sweep(config.run_configs(),
                    RunOptions(progress=first, stop_requested=stop_in_second_run),
                    trainer=fit_each)
    assert first.events == [("new", 1), ("new", 3)]
    done = (tmp_path / "study" / "z1" / "last.safetensors").stat().st_mtime_ns
    second = Recorder()
    runs = train_sweep(config.run_configs(), RunOptions(progress=second), trainer=fit_each)
    assert second.events == [("skipped", 1), ("resumed", 3)]
    assert [(r.z_dim, r.status) for r in runs] == [(1, "finished"), (3, "resumed")]
    assert (tmp_path / "study" / "z1" / "last.safetensors").stat().st_mtime_ns == done
    history = [json.loads(x) for x in
               (tmp_path / "study" / "z3" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2]
    third = Recorder()
    train_sweep(config.run_configs(), RunOptions(progress=third), trainer=fit_each)
    assert third.events == [("skipped", 1), ("skipped", 3)]


def test_interrupted_stacked_sweep_resumes_every_run(tiny_dataset: str, tiny_dataset_dir: Path,
                                                     tmp_path: Path) -> None:
    """The default trainer fits all z_dims at once, so an interruption leaves all unfinished."""
    from vaelab.training import TrainingInterrupted

    config = StudyConfig.from_dict(dict(out=str(tmp_path / "study"), z_dims=(1, 3), model="mlp",
                                        dataset=tiny_dataset, data_dir=str(tiny_dataset_dir),
                                        epochs=2, batch_size=100, device="cpu"))
    steps = {"n": 0}

    def stop_in_second_epoch() -> bool:  # 6 steps per epoch
        steps["n"] += 1
        return steps["n"] == 8

    first = Recorder()
    with pytest.raises(TrainingInterrupted):
        train_sweep(config.run_configs(),
                    RunOptions(progress=first, stop_requested=stop_in_second_epoch))
    assert first.events == [("new", 1), ("new", 3)]
    second = Recorder()
    runs = train_sweep(config.run_configs(), RunOptions(progress=second))
    assert second.events == [("resumed", 1), ("resumed", 3)]
    assert [(r.z_dim, r.status) for r in runs] == [(1, "resumed"), (3, "resumed")]
    for z in (1, 3):
        history = [json.loads(x) for x in
                   (tmp_path / "study" / f"z{z}" / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in history] == [1, 2]
    third = Recorder()
    train_sweep(config.run_configs(), RunOptions(progress=third))
    assert third.events == [("skipped", 1), ("skipped", 3)]


def test_sweep_refuses_a_run_directory_with_other_settings(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path) -> None:
    from vaelab.errors import VaelabError

    base = dict(out=str(tmp_path / "s"), z_dims=(2,), model="mlp", dataset=tiny_dataset,
                data_dir=str(tiny_dataset_dir), epochs=1, batch_size=100, device="cpu")
    train_sweep(StudyConfig.from_dict(base).run_configs())
    with pytest.raises(VaelabError, match="other settings: lr"):
        train_sweep(StudyConfig.from_dict({**base, "lr": 0.01}).run_configs())


def test_bad_flags_and_missing_study_are_one_line_errors(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "not a study directory" in err and err.count("\n") == 1
    assert main(["study", "--z-dims", "1,0", "--out", str(tmp_path / "s")]) == 2
    assert "--z-dims must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["study", "--z-dims", "one"])
    assert exit_info.value.code == 2


def test_classifier_cache_falls_back_when_the_data_root_is_read_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from vaelab.study.run import default_classifier_dir

    root = tmp_path / "shared"
    root.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = StudyConfig.from_dict(dict(out=str(tmp_path / "s"), data_dir=str(root)))
    assert default_classifier_dir(config) == root / "classifiers"
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a read-only share
    home_cache = tmp_path / "home" / ".cache" / "vaelab" / "classifiers"
    assert default_classifier_dir(config) == home_cache


def test_a_first_format_study_keeps_its_measurement_settings(tmp_path: Path) -> None:
    """A study.json of vaelab 0.1.0 (settings flat) re-reads with the grid it was made with."""
    from vaelab.study.config import load_study_config

    saved = {"out": "elsewhere", "z_dims": [1, 2], "model": "seed", "dataset": "mnist",
             "epochs": 100, "batch_size": 32, "lr": 0.001, "seed": 1, "grid_size": 20,
             "grid_range": 5.0, "map_points": 301, "prior_samples": 10000,
             "elbow_tolerance": 0.05, "classifier_dir": None}
    (tmp_path / "study.json").write_text(json.dumps(saved))
    config = load_study_config(tmp_path)
    assert (config.grid_size, config.map_points, config.z_dims) == (20, 301, (1, 2))
    assert config.train.epochs == 100 and config.out == str(tmp_path)


def _unlabelled(splits: object) -> object:
    """The same images without labels, as a user's folder of unlabelled images gives them."""
    from dataclasses import fields

    from vaelab.data.datasets import Splits

    class Unlabelled(Splits):
        @property
        def labelled(self) -> bool:
            return False

    values = {f.name: getattr(splits, f.name) for f in fields(Splits)}
    values.update(train_labels=None, val_labels=None, test_labels=None, class_names=())
    return Unlabelled(**values)


def test_an_unlabelled_study_reports_every_section_that_needs_no_classifier(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Loss, sweep, elbow, active units, I_q and rate-distortion run; the classifier's
    sections are left out with one sentence, and no classifier is trained or asked for."""
    import vaelab.data
    import vaelab.evaluation.classifier as classifier_module
    import vaelab.study.analysis as analysis
    from vaelab.study.run import run_study

    config = StudyConfig.from_dict(dict(out=str(tmp_path / "study"), z_dims=(1, 2, 3),
                                        model="mlp", dataset=tiny_dataset,
                                        data_dir=str(tiny_dataset_dir), epochs=2,
                                        batch_size=100, device="cpu"))
    real = vaelab.data.load_splits

    def unlabelled(*args: object, **kwargs: object) -> object:
        return _unlabelled(real(*args, **kwargs))  # type: ignore[arg-type]

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unlabelled study trained a classifier")

    monkeypatch.setattr(vaelab.data, "load_splits", unlabelled)
    monkeypatch.setattr(analysis, "load_splits", unlabelled)
    monkeypatch.setattr(classifier_module, "train_classifier", no_training)
    notes: list[str] = []
    paths = run_study(config, notify=notes.append)
    results = json.loads(paths.results.read_text())
    markdown = paths.markdown.read_text()
    assert results["labelled"] is False and results["classifier"] is None
    assert "references" not in results and "abstention" not in results
    assert "one_d" not in results and "map_points" not in results["two_d"]
    assert sorted(p.name for p in (tmp_path / "study" / "figures").glob("*.png")) == sorted(
        figure_names((1, 2, 3), labelled=False))
    for z in ("1", "2", "3"):
        row = results["sweep"][z]
        assert {"neg_elbo", "i_q", "marginal_kl", "active_units"} <= set(row)
        assert "fd" not in row and "precision" not in row
    assert [p["z_dim"] for p in results["rate_distortion"]["points"]] == [1, 2, 3]
    for section in SECTIONS:
        assert f"## {section}" in markdown
    assert markdown.count("has no labels, so no classifier could be trained on it") == 1
    assert "Fréchet distance between" not in markdown and "digit" not in markdown.lower()
    assert any("has no labels" in note for note in notes)
    assert not (tmp_path / "study" / "classifier.safetensors").exists()


def test_a_report_keeps_the_study_classifier_unless_it_is_of_an_older_kind(
        tiny_dataset: str, tiny_dataset_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A study of vaelab 0.1.0 saved a classifier that cannot refuse an image: the report
    measures with the current kind instead (copied into the study); a current one is kept."""
    import torch

    import vaelab.study.run as run_module
    from vaelab.evaluation.classifier import (
        ARCHITECTURE,
        Classifier,
        ClassifierInfo,
        DigitCNN,
        load_classifier,
        save_classifier,
    )

    def made(architecture: str, reject: bool) -> Classifier:
        info = ClassifierInfo(dataset=tiny_dataset, epochs=1, seed=0, n_train=1, n_test=1,
                              test_accuracy=0.5, seconds=0.0,
                              class_names=tuple(str(d) for d in range(10)),
                              architecture=architecture, reject=reject)
        return Classifier(DigitCNN(10, reject).eval(), info)

    config = StudyConfig.from_dict(dict(out=str(tmp_path / "study"), dataset=tiny_dataset,
                                        data_dir=str(tiny_dataset_dir),
                                        classifier_dir=str(tmp_path / "cache")))
    saved = tmp_path / "study" / run_module.CLASSIFIER_FILE
    saved.parent.mkdir()
    current = made(ARCHITECTURE, True)
    asked: list[object] = []

    def cached(splits: object, cache: Path, **_: object) -> tuple[Classifier, Path, bool]:
        asked.append(splits)
        path = cache / "current.safetensors"
        cache.mkdir(exist_ok=True)
        save_classifier(path, current)
        return current, path, False

    monkeypatch.setattr(run_module, "cached_classifier", cached)
    notes: list[str] = []
    save_classifier(saved, made("digitcnn-v3", False))
    found = run_module.study_classifier(config, torch.device("cpu"), notes.append)
    assert found is not None and found.info.architecture == ARCHITECTURE and len(asked) == 1
    assert load_classifier(saved).info.reject  # the study now holds the current kind
    assert any("older kind" in note for note in notes)
    again = run_module.study_classifier(config, torch.device("cpu"), notes.append)
    assert again is not None and again.info.reject and len(asked) == 1  # kept, not replaced


def test_results_keep_the_seconds_of_each_stage_of_the_analysis(quick_study: Path) -> None:
    seconds = json.loads((quick_study / "results.json").read_text())["seconds"]
    expected = {"data loading", "test-set features", "checkpoint loading", "test losses",
                "posterior means, active units", "I_q and marginal KL", "first prior draw",
                "further prior draws", "single-model figures", "noise table", "sweep figures",
                "rate-distortion figure", "reference rows", "abstention rates", "1-D map",
                "2-D map"}
    assert set(seconds) == expected
    assert all(value >= 0 for value in seconds.values())
    assert seconds["sweep figures"] > 0 and seconds["I_q and marginal KL"] > 0  # they ran


# --- the best checkpoint, --figures-to, and the study directory's conflicts --------------------


@pytest.fixture(scope="module")
def overfitting_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vaelab study` of one z_dim trained as conftest's ``overfitting_run`` (best != last), on
    unlabelled digits, so no classifier is trained."""
    data = write_sample_digits(tmp_path_factory.mktemp("data") / "digits.npz",
                               OVERFITTING_DIGITS)
    study = tmp_path_factory.mktemp("study") / "overfitting"
    with torch_threads(1):
        assert main(["study", "--model", "mlp", "--dataset", str(data), "--z-dims",
                     str(OVERFITTING_Z_DIM), *OVERFITTING_FLAGS, "--out", str(study)]) == 0
    return study


def test_report_measures_the_best_checkpoint_and_copies_its_figures(
        overfitting_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from vaelab.data import load_splits
    from vaelab.evaluation.elbo import evaluate
    from vaelab.runs.rebuild import load_run

    run = overfitting_study / f"z{OVERFITTING_Z_DIM}"
    records = epoch_records(run)
    best_epoch = lowest_epoch(records, "val_loss")
    assert best_epoch < records[-1]["epoch"], "the validation loss never rose: best is last"
    capsys.readouterr()
    figures = tmp_path / "readme-figures"
    assert main(["report", str(overfitting_study), "--figures-to", str(figures)]) == 0
    err = capsys.readouterr().err
    (measured,) = json.loads((overfitting_study / "results.json").read_text())["runs"]
    assert measured["best_epoch"] == best_epoch
    config = load_run(run).config
    test = torch.from_numpy(load_splits(config.dataset, config.data_dir,
                                        config.val_size).test_images)
    scores = {which: evaluate(load_run(run, which=which).model, test)["neg_elbo"]
              for which in ("best", "last")}
    assert scores["best"] != pytest.approx(scores["last"], rel=1e-6)
    assert measured["test"]["neg_elbo"] == pytest.approx(scores["best"], rel=1e-6)
    # --figures-to: every figure of the report, at the pixel size the report shows it.
    names = figure_names((OVERFITTING_Z_DIM,), labelled=False)
    assert sorted(p.name for p in figures.iterdir()) == sorted(names)
    for name in names:
        assert png_size(figures / name) == png_size(overfitting_study / "figures" / name), name
    assert f"{len(names)} figures" in err and str(figures) in err


def _saved_study(folder: Path, **settings: object) -> Path:
    """A study directory holding its study.json and nothing trained."""
    folder.mkdir(parents=True)
    config = StudyConfig.from_dict({"out": str(folder), **settings})
    (folder / STUDY_FILE).write_text(json.dumps(config.to_dict()))
    return folder


def _error_line(err: str) -> str:
    """The one error line of ``err`` (after the study's own banner, if it printed one)."""
    errors = [line for line in err.splitlines() if line.startswith("vaelab: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert err.rstrip("\n").splitlines()[-1] == errors[0], err  # nothing follows it
    return errors[0]


@pytest.mark.parametrize("setting", ["model", "dataset"])
def test_a_study_directory_of_another_model_or_dataset_is_refused(
        setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = write_sample_digits(tmp_path / "saved.npz", 10)
    other = write_sample_digits(tmp_path / "other.npz", 20)
    study = _saved_study(tmp_path / "study", model="mlp", dataset=str(saved), z_dims=(2,),
                         epochs=1, device="cpu")
    before = (study / STUDY_FILE).read_bytes()
    flag, value = {"model": ("--model", "vae"), "dataset": ("--dataset", str(other))}[setting]
    assert main(["study", "--out", str(study), flag, value]) == 2
    err = _error_line(capsys.readouterr().err)
    was = "mlp" if setting == "model" else str(saved)
    assert f"holds a study of {setting}={was!r}, not {value!r}; choose another --out" in err
    assert sorted(p.name for p in study.iterdir()) == [STUDY_FILE]  # nothing trained
    assert (study / STUDY_FILE).read_bytes() == before


def test_a_study_directory_that_is_a_file_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("not a study")
    assert main(["study", "--out", str(taken), "--z-dims", "2", "--device", "cpu"]) == 2
    err = _error_line(capsys.readouterr().err)
    assert f"cannot create study directory {taken}" in err and "choose a writable --out" in err
    assert taken.read_text() == "not a study"


def test_report_names_every_run_the_study_has_not_trained(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vaelab.study.config import load_study_config

    study = _saved_study(tmp_path / "study", z_dims=(1, 2), seeds=2)
    config = load_study_config(study)
    trained = config.run_dir(1, config.seed_list()[0])
    trained.mkdir()
    (trained / "best.safetensors").touch()  # what the report looks for before it measures
    assert main(["report", str(study)]) == 2
    err = _error_line(capsys.readouterr().err)
    first, second = config.seed_list()
    assert (f"has no trained model for z_dim 1 (seed {second}), 2 (seed {first}), "
            f"2 (seed {second}); finish it with `vaelab study --out {study}`") in err
    assert not (study / "report.html").exists()
