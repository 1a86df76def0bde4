"""Choose the classifier's abstention mechanism, and its feature space, by measured rates.

    python benchmarks/abstention.py [--dataset mnist] [--n 10000] [--threshold 0.5]

Trains, on the dataset's training split, (a) the plain 10-class classifier, abstaining below a
probability threshold; (b) the same network with an 11th "none of these" output trained on
blends of two training images of different classes and on noise; (c) an ensemble of three plain
classifiers (seeds 0, 1, 2) that abstains unless all three name the same class with a mean
probability at the threshold. Then measures how often each refuses clean test images, blends of
two test images of different classes, blurred test images (Gaussian, sigma 1 and 1.5 pixels),
uniform noise and pixel-shuffled test images (a kind no mechanism was trained on), and the
accuracy on the clean images it accepts.

It also checks each classifier's penultimate features as the space of the Fréchet distance and
precision/recall: the reference rows (training images, noise, shuffled images, blends, each
against the test set) must come out in order — real images far above the others.

Prints torch's CPU capability; the machine may be shared, so read the times as approximate.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from vaelab.data import load_splits
from vaelab.evaluation import probes
from vaelab.evaluation.classifier import UNCLEAR, Classifier, ClassifierSettings, train_classifier
from vaelab.evaluation.sample_quality import feature_quality

Refuses = Callable[[torch.Tensor], np.ndarray]  # images -> bool (N,): refused


def _threshold(classifier: Classifier, threshold: float) -> Refuses:
    def refuses(images: torch.Tensor) -> np.ndarray:
        labels, confidence = classifier.predict(images)
        return np.asarray((labels == UNCLEAR) | (confidence < threshold))
    return refuses


def _ensemble(members: list[Classifier], threshold: float) -> Refuses:
    def refuses(images: torch.Tensor) -> np.ndarray:
        probs = torch.stack([m.probabilities(images) for m in members])  # (3, N, 10)
        votes = probs.argmax(2)
        agree = (votes == votes[0]).all(0)
        mean = probs.mean(0).max(1).values
        return np.asarray((~agree | (mean < threshold)).numpy())
    return refuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--n", type=int, default=10_000, help="images per probe set")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads")
    splits = load_splits(args.dataset)
    assert splits.test_labels is not None and splits.train_labels is not None
    n = min(args.n, len(splits.test_images))
    test_u8, test_labels = splits.test_images[:n], splits.test_labels[:n]
    clean = torch.from_numpy(test_u8).unsqueeze(1).float() / 255
    sets = {
        "clean test images": clean,
        "blends of two classes": probes.blends(splits.test_images, splits.test_labels, n, seed=1),
        "blurred, sigma 1": probes.blurred(test_u8, 1.0),
        "blurred, sigma 1.5": probes.blurred(test_u8, 1.5),
        "uniform noise": probes.uniform_noise(n, seed=2),
        "pixel-shuffled (never trained on)": probes.shuffled(test_u8, seed=3),
    }

    trained: dict[str, Classifier] = {}
    for name, settings in (("plain", ClassifierSettings(negatives=0.0)),
                           ("reject", ClassifierSettings()),
                           ("plain seed 1", ClassifierSettings(negatives=0.0, seed=1)),
                           ("plain seed 2", ClassifierSettings(negatives=0.0, seed=2))):
        started = time.perf_counter()
        trained[name] = train_classifier(splits, settings)
        print(f"trained {name}: {100 * trained[name].info.test_accuracy:.2f} % test accuracy, "
              f"{time.perf_counter() - started:.0f} s")
    mechanisms: dict[str, Refuses] = {
        f"(a) softmax below {args.threshold:g}": _threshold(trained["plain"], args.threshold),
        "(a) softmax below 0.9": _threshold(trained["plain"], 0.9),
        "(b) reject class": _threshold(trained["reject"], 0.0),
        f"(b) reject class, or below {args.threshold:g}": _threshold(trained["reject"],
                                                                     args.threshold),
        f"(c) ensemble of 3, disagree or below {args.threshold:g}": _ensemble(
            [trained["plain"], trained["plain seed 1"], trained["plain seed 2"]],
            args.threshold),
    }
    print(f"\nshare refused, {n:,} images per set")
    print("| mechanism | " + " | ".join(sets) + " | accuracy on accepted clean |")
    print("|---|" + "---:|" * (len(sets) + 1))
    for name, refuses in mechanisms.items():
        shares = {kind: float(refuses(images).mean()) for kind, images in sets.items()}
        accepted = ~refuses(clean)
        member = trained["reject" if name.startswith("(b)") else "plain"]
        labels, _ = member.predict(clean)
        correct = float((labels[accepted] == test_labels[accepted]).mean())
        print(f"| {name} | " + " | ".join(f"{100 * v:.1f} %" for v in shares.values())
              + f" | {100 * correct:.2f} % |")

    print("\nreference rows against the test set, k = 3, in each classifier's features")
    real_pool = np.concatenate([splits.train_images, splits.val_images])
    pick = np.random.default_rng(4).choice(len(real_pool), size=n, replace=False)
    references = {
        "training images": torch.from_numpy(real_pool[pick]).unsqueeze(1).float() / 255,
        "uniform noise": probes.uniform_noise(n, seed=5),
        "pixel-shuffled": probes.shuffled(real_pool[pick], seed=6),
        "blends of two classes": probes.blends(real_pool, np.concatenate(
            [splits.train_labels, splits.val_labels]), n, seed=7),
    }
    for name in ("plain", "reject"):
        classifier = trained[name]
        test_features = classifier.features(clean)
        print(f"{name}: | reference | FD | precision | recall |")
        for kind, images in references.items():
            quality = feature_quality(test_features, classifier.features(images))
            print(f"  | {kind} | {quality.fd:.2f} | {quality.precision:.3f} | "
                  f"{quality.recall:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
