"""The binary pair classifier (diffmix.gpu._classifier; issue 8 item 3, App. J.1).

A narrow network learns a synthetic separable two-class image set on the CPU in seconds; the metrics
are checked against hand-computed confusion matrices; save/load, determinism and input checks. A
slow test trains the real ResNet-18 (width 64) on a real Fashion-MNIST pair when the data are
installed.
"""
import sys
import time

import numpy as np
import pytest
import torch

from diffmix.gpu._classifier import (PairResNet, balanced_accuracy, confusion_matrix,
                                     load_classifier, macro_f1, predict_classes, save_classifier,
                                     train_pair_classifier)
from tolerances import CLASSIFIER_SYNTHETIC_ACCURACY


def synthetic_pairs(n, seed, side=16, imbalance=0.3):
    """Class 0: bright left half, class 1: bright top half, both plus unit Gaussian noise (n images)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) >= imbalance).astype(np.int64)
    pattern = np.zeros((2, side, side), np.float32)
    pattern[0, :, : side // 2] = 1.0
    pattern[1, : side // 2, :] = 1.0
    images = pattern[labels] + rng.standard_normal((n, side, side)).astype(np.float32)
    return images[:, None], labels


# Tiny networks run with num_threads=1: per-op overhead dominates, and two OpenMP threads on a shared
# 2-core machine spin against each other (measured 1.9 s vs 0.05 s per step of a width-4 network).


@pytest.fixture(scope="module")
def trained():
    images, labels = synthetic_pairs(600, seed=0)
    start = time.perf_counter()
    model, report = train_pair_classifier(images, labels, seed=0, epochs=2, width=8, batch_size=64,
                                          lr_backbone=3e-3, lr_head=1e-2, num_threads=1)
    return model, report, time.perf_counter() - start


# ---------------------------------------------------------------------- metrics


def test_metrics_against_hand_computed_confusion():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
    c = confusion_matrix(y_true, y_pred)
    assert c.tolist() == [[3, 1], [2, 4]]
    # recalls 3/4 and 4/6; F1_0 = 2*3 / (2*3 + 2 + 1) = 6/9, F1_1 = 2*4 / (2*4 + 1 + 2) = 8/11
    assert balanced_accuracy(c) == pytest.approx((3 / 4 + 4 / 6) / 2, rel=1e-15)
    assert macro_f1(c) == pytest.approx((6 / 9 + 8 / 11) / 2, rel=1e-15)
    # perfect, and all-one-class predictions
    assert balanced_accuracy([[5, 0], [0, 3]]) == 1.0 and macro_f1([[5, 0], [0, 3]]) == 1.0
    assert balanced_accuracy([[5, 0], [3, 0]]) == 0.5
    assert macro_f1([[5, 0], [3, 0]]) == pytest.approx((10 / 13 + 0.0) / 2, rel=1e-15)
    with pytest.raises(ValueError, match="y_pred"):
        confusion_matrix([0, 1], [0, 2])


# ---------------------------------------------------------------------- network and training


def test_resnet18_shape():
    net = PairResNet()
    assert sum(p.numel() for p in net.parameters()) == 11689512 - 9408 + 576 - 513000 + 1026
    assert net.stem[0].in_channels == 1 and net.stem[0].kernel_size == (3, 3) and net.stem[0].stride == (1, 1)
    assert [len(stage) for stage in net.stages] == [2, 2, 2, 2]
    assert [stage[0].conv1.out_channels for stage in net.stages] == [64, 128, 256, 512]
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert len(net.head_parameters()) == 2
    assert len(net.backbone_parameters()) + 2 == len(list(net.parameters()))


def test_synthetic_separable_set_is_learned(trained):
    model, report, seconds = trained
    print(f"\nsynthetic: validation balanced accuracy {report.balanced_accuracy:.4f}, macro F1 {report.macro_f1:.4f} "
          f"(n_train {report.n_train}, n_val {report.n_val}, {seconds:.1f} s)", file=sys.stderr)
    assert report.balanced_accuracy > CLASSIFIER_SYNTHETIC_ACCURACY
    # stratified 90/10 split: round(0.1 n_c) per class
    assert report.n_val == sum(round(0.1 * n) for n in np.bincount(synthetic_pairs(600, seed=0)[1]))
    assert report.n_train + report.n_val == 600 and report.n_iter == 2 * -(-report.n_train // 64)
    # fresh held-out images never seen in training or validation
    images, labels = synthetic_pairs(400, seed=123)
    accuracy = balanced_accuracy(confusion_matrix(labels, predict_classes(model, images, num_threads=1)))
    print(f"synthetic: fresh held-out balanced accuracy {accuracy:.4f}", file=sys.stderr)
    assert accuracy > CLASSIFIER_SYNTHETIC_ACCURACY


def test_training_is_reproducible_and_leaves_global_rng_alone():
    images, labels = synthetic_pairs(80, seed=1)
    torch.manual_seed(999)
    before, threads = torch.random.get_rng_state(), torch.get_num_threads()
    m1, r1 = train_pair_classifier(images, labels, seed=5, epochs=1, width=2, batch_size=32, num_threads=1)
    assert torch.equal(torch.random.get_rng_state(), before) and torch.get_num_threads() == threads
    m2, r2 = train_pair_classifier(images, labels, seed=5, epochs=1, width=2, batch_size=32, num_threads=1)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    assert r1.confusion == r2.confusion
    m3, _ = train_pair_classifier(images, labels, seed=6, epochs=1, width=2, batch_size=32, num_threads=1)
    assert not torch.equal(m1.head.weight, m3.head.weight)


def test_save_load_round_trip(trained, tmp_path):
    model, report, _ = trained
    images, _ = synthetic_pairs(100, seed=7)
    path = save_classifier(tmp_path / "sub" / "classifier.pt", model, report)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded, loaded_report = load_classifier(path)
    assert loaded_report == report
    assert isinstance(report.as_dict()["confusion"], list)
    np.testing.assert_array_equal(predict_classes(loaded, images, num_threads=1),
                                  predict_classes(model, images, num_threads=1))
    with torch.no_grad():
        assert torch.equal(loaded(torch.from_numpy(images[:8])), model.eval()(torch.from_numpy(images[:8])))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pt"):
        load_classifier(tmp_path / "junk.pt")


def test_bad_inputs_name_the_parameter():
    images, labels = synthetic_pairs(20, seed=2)
    with pytest.raises(ValueError, match="labels: label 2"):
        train_pair_classifier(images, np.where(labels == 1, 2, 0), seed=0, epochs=1, width=2)
    with pytest.raises(ValueError, match="labels: label -1"):
        train_pair_classifier(images, labels - 1, seed=0, epochs=1, width=2)
    with pytest.raises(ValueError, match="labels: 19 labels for 20 images"):
        train_pair_classifier(images, labels[:19], seed=0, epochs=1, width=2)
    with pytest.raises(ValueError, match="labels: each class"):
        train_pair_classifier(images, np.zeros(20, np.int64), seed=0, epochs=1, width=2)
    with pytest.raises(ValueError, match=r"images: shape \(20, 16, 16\)"):
        train_pair_classifier(images[:, 0], labels, seed=0, epochs=1, width=2)
    with pytest.raises(ValueError, match="images: shape"):
        train_pair_classifier(np.repeat(images, 3, axis=1), labels, seed=0, epochs=1, width=2)
    with pytest.raises(ValueError, match="images: dtype"):
        train_pair_classifier((images * 100).astype(np.uint8), labels, seed=0, epochs=1, width=2)
    with pytest.raises(ValueError, match="val_fraction"):
        train_pair_classifier(images, labels, seed=0, epochs=1, width=2, val_fraction=1.0)
    with pytest.raises(ValueError, match="seed"):
        train_pair_classifier(images, labels, seed=-1, epochs=1, width=2)
    with pytest.raises(ValueError, match="images: shape"):
        predict_classes(PairResNet(width=2), images[:, 0])


# ---------------------------------------------------------------------- real data


def pair_test_images(data, subset, partner, count=None):
    """Fashion-MNIST test images of the pair in the subset's units (its mean/std, padded), and their labels."""
    from diffmix.gpu._fmnist import SNEAKER
    mask = (data.y_test == SNEAKER) | (data.y_test == partner)
    x = data.x_test[mask][:count].astype(np.float64) / 255.0
    y = (data.y_test[mask][:count] == partner).astype(np.int64)
    pad = subset.pad
    images = np.pad((x - subset.mean) / subset.std, ((0, 0), (pad, pad), (pad, pad)), constant_values=subset.pad_value)
    return images[:, None].astype(np.float32), y


def load_data_or_skip():
    from diffmix.gpu._fmnist import FashionMNISTError, load_fashion_mnist
    try:
        return load_fashion_mnist()
    except FashionMNISTError as exc:
        pytest.skip(str(exc))


@pytest.mark.slow
def test_real_pair_classifier_fashion_mnist():
    """ResNet-18 (width 64) on Sneaker vs Bag, a 2000-image balanced subset, 2 epochs at batch 32, CPU.

    A shortened recipe that fits a CPU (about 8 minutes on 2 busy cores): 2 epochs at the default
    batch 128 gave only 0.92 (28 optimizer steps); batch 32 gives 4x the steps for the same work.
    The full recipe (8000 images, 15 epochs) is the gpu test below. Both the 10 % validation split
    and 400 Fashion-MNIST test images of the pair must exceed 0.95 balanced accuracy.
    """
    from diffmix.gpu._fmnist import pair_subset
    data = load_data_or_skip()
    subset = pair_subset(data.x_train, data.y_train, 8, sneaker_fraction=0.5, size=2000, seed=0)
    model, report = train_pair_classifier(subset.images, subset.labels, seed=0, epochs=2, batch_size=32, width=64)
    images, labels = pair_test_images(data, subset, 8, 400)
    test_accuracy = balanced_accuracy(confusion_matrix(labels, predict_classes(model, images)))
    print(f"\nSneaker-Bag ResNet-18, 2000 images, 2 epochs, batch 32, cpu: validation balanced accuracy "
          f"{report.balanced_accuracy:.4f}, macro F1 {report.macro_f1:.4f}, test balanced accuracy "
          f"{test_accuracy:.4f}, {report.seconds:.0f} s", file=sys.stderr)
    assert report.balanced_accuracy > 0.95 and test_accuracy > 0.95


@pytest.mark.slow
@pytest.mark.gpu
def test_real_pair_classifier_full_recipe_cuda():
    """App. J.1's recipe on CUDA: ResNet-18, Sneaker vs Ankle boot (the paper's hardest pair), 8000 images
    at 50 %, 15 epochs, default rates. Measured on an H200: validation 0.976-0.979, test (2000 images) 0.979,
    about 10 s; must exceed 0.95 on both."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from diffmix.gpu._fmnist import pair_subset
    data = load_data_or_skip()
    subset = pair_subset(data.x_train, data.y_train, 9, sneaker_fraction=0.5, size=8000, seed=0)
    model, report = train_pair_classifier(subset.images, subset.labels, seed=0, device="cuda")
    images, labels = pair_test_images(data, subset, 9)
    c = confusion_matrix(labels, predict_classes(model, images))
    print(f"\nSneaker-Ankle boot ResNet-18, 8000 images, 15 epochs, cuda: validation balanced accuracy "
          f"{report.balanced_accuracy:.4f}, macro F1 {report.macro_f1:.4f}; test ({labels.size}) balanced accuracy "
          f"{balanced_accuracy(c):.4f}, macro F1 {macro_f1(c):.4f}; {report.seconds:.1f} s", file=sys.stderr)
    assert report.balanced_accuracy > 0.95 and balanced_accuracy(c) > 0.95
