"""Reference values for skiplab's linear CKA (src/analysis/cka.rs), computed once with NumPy.

The functions are those of google-research's CKA demo (Kornblith et al. 2019,
"Similarity of Neural Network Representations Revisited"): linear Gram matrices, centring
(biased, or the unbiased HSIC estimator of Song et al. 2012), and CKA from the centred Grams.
The minibatch form is Nguyen, Raghu and Kornblith 2021's: the unbiased HSIC of every batch
accumulated, then normalised.

Writes tests/fixtures/cka_reference.json: three layers' activations of 64 examples (seeded,
with structure: the second a noisy linear map of the first, the third a tanh of the second)
and the full (biased and debiased) and minibatch (batch 16) CKA between every pair.

    python3 bench/cka_reference.py
"""

import json
import pathlib

import numpy as np


def gram_linear(x):
    return x.dot(x.T)


def center_gram(gram, unbiased=False):
    if not np.allclose(gram, gram.T):
        raise ValueError("the Gram matrix must be symmetric")
    gram = gram.copy()
    if unbiased:
        n = gram.shape[0]
        np.fill_diagonal(gram, 0)
        means = np.sum(gram, 0, dtype=np.float64) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0)
    else:
        means = np.mean(gram, 0, dtype=np.float64)
        means -= np.mean(means) / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def cka(gram_x, gram_y, debiased=False):
    gram_x = center_gram(gram_x, unbiased=debiased)
    gram_y = center_gram(gram_y, unbiased=debiased)
    scaled_hsic = gram_x.ravel().dot(gram_y.ravel())
    return scaled_hsic / (np.linalg.norm(gram_x) * np.linalg.norm(gram_y))


def minibatch_cka(x, y, batch):
    xy = xx = yy = 0.0
    for start in range(0, x.shape[0], batch):
        kx = center_gram(gram_linear(x[start : start + batch]), unbiased=True)
        ky = center_gram(gram_linear(y[start : start + batch]), unbiased=True)
        n = kx.shape[0]
        scale = 1.0 / (n * (n - 3))
        xy += scale * kx.ravel().dot(ky.ravel())
        xx += scale * kx.ravel().dot(kx.ravel())
        yy += scale * ky.ravel().dot(ky.ravel())
    return xy / np.sqrt(xx * yy)


def main():
    rng = np.random.default_rng(2019)
    n = 64
    first = rng.normal(size=(n, 10))
    second = first.dot(rng.normal(size=(10, 20))) + 0.5 * rng.normal(size=(n, 20))
    third = np.tanh(second.dot(rng.normal(size=(20, 5))) / 4.0) + 3.0
    layers = [first, second, third]
    full = [[cka(gram_linear(a), gram_linear(b)) for b in layers] for a in layers]
    debiased = [
        [cka(gram_linear(a), gram_linear(b), debiased=True) for b in layers] for a in layers
    ]
    mini = [[minibatch_cka(a, b, 16) for b in layers] for a in layers]
    out = {
        "source": "bench/cka_reference.py (NumPy " + np.__version__ + ")",
        "examples": n,
        "layers": [{"features": a.shape[1], "values": a.ravel().tolist()} for a in layers],
        "full": full,
        "full_debiased": debiased,
        "minibatch": {"batch": 16, "cka": mini},
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/cka_reference.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    for row in full:
        print(" ".join(f"{v:.6f}" for v in row))


if __name__ == "__main__":
    main()
