"""``diffmix fmnist stats``: class statistics of the real Fashion-MNIST training set (issue 8 item 5).

On the 60,000 training images with pixels scaled to [0, 1], per class: ``variance`` = mean per-pixel
variance of the class, ``centroid_norm2`` = ||mu_c - mu||^2 / 784 and ``cosine_to_sneaker`` =
cos(mu_c - mu, mu_sneaker - mu), with mu the mean training image (:func:`class_statistics`).
"""
from __future__ import annotations

import argparse
import json
import sys

from ._fmnist import ENV_VAR, FashionMNISTError, class_statistics, load_fashion_mnist

__all__ = ["fmnist_main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffmix fmnist", description="Fashion-MNIST data tools.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    stats = sub.add_parser(
        "stats", help="per-class variance, centroid norm and cosine to Sneaker of the training set",
        description="Per-class statistics of the Fashion-MNIST training images, pixels scaled to [0, 1]: "
                    "variance = mean per-pixel variance of the class; centroid_norm2 = ||mu_c - mu||^2 / 784; "
                    "cosine_to_sneaker = cos(mu_c - mu, mu_sneaker - mu), mu = the mean training image.")
    stats.add_argument("--data", metavar="PATH", default=None,
                       help=f"folder of the four IDX files (.gz or not) or an .npz (default: ${ENV_VAR}, "
                            "else /usr/share/datasets/fashion-mnist)")
    stats.add_argument("--json", action="store_true",
                       help='print {"classes": [{"label", "name", "variance", "centroid_norm2", '
                            '"cosine_to_sneaker"}, ...]}')
    stats.add_argument("--no-verify", action="store_true",
                       help="skip the SHA-256 check of the genuine files (for other data of the same size)")
    return parser


def _table(data: dict) -> str:
    lines = [f"{'label':>5}  {'name':<12} {'variance':>10} {'centroid_norm2':>15} {'cosine_to_sneaker':>18}"]
    for row in data["classes"]:
        cos = "nan" if row["cosine_to_sneaker"] is None else f"{row['cosine_to_sneaker']:.6f}"
        lines.append(f"{row['label']:>5}  {row['name']:<12} {row['variance']:>10.6f} "
                     f"{row['centroid_norm2']:>15.6f} {cos:>18}")
    return "\n".join(lines)


def fmnist_main(argv: list[str] | None = None) -> int:
    """Entry point of ``diffmix fmnist``; returns the exit status (2 for missing or corrupt data).

    Examples
    --------
    >>> fmnist_main(["stats", "--data", "/nonexistent"])  # doctest: +SKIP
    2
    """
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        data = load_fashion_mnist(args.data, verify=not args.no_verify)
    except FashionMNISTError as exc:
        print(f"diffmix fmnist: error: {exc}", file=sys.stderr)
        return 2
    try:
        stats = class_statistics(data.x_train, data.y_train)
    except ValueError as exc:
        print(f"diffmix fmnist: error: {data.source}: {exc}", file=sys.stderr)
        return 2
    result = stats.to_dict()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Fashion-MNIST training set: {data.x_train.shape[0]} images from {data.source}"
              f"{' (SHA-256 verified)' if data.verified else ''}; pixels scaled to [0, 1], mu = mean image")
        print(_table(result))
    return 0
