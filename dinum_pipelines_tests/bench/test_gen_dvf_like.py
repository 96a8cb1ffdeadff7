"""The DVF-like generator writes a chunk at a time and still writes the bytes it always wrote.

The digests below are those of the one-shot generator (before chunking, commit 867b5bd), for the
file and for its sidecar; chunk sizes that split every numpy call across chunks (including an
odd one, so that 32-bit halves straddle chunks) must reproduce them.
"""

from __future__ import annotations

import hashlib

import pytest

ONE_SHOT_DIGESTS = {
    # (rows, seed, invalid rate): (csv sha256, sidecar sha256)
    (12345, 2024, 0.002): (
        "2fd497db5b439a45248ff5cd122f568626483b15f1c28bcb54b03712a8847fe6",
        "ad7e44c6e8c46ae8b64ad5dedcd4ee8ee6fa3bbc593956dab21f5296653038fd",
    ),
    (5000, 7, 0.05): (
        "df0466ad7dbe3b67e0f3eb2f5feb615b7a6bd2366ac84685a329e134fb7ce6dd",
        "a752739e441a06b64d17d83b2dd19db17cecfaa0a36f18b4181326e853ffcd52",
    ),
}


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("rows", "seed", "rate"), list(ONE_SHOT_DIGESTS))
@pytest.mark.parametrize("chunk_rows", [997, 4096, 1_000_000])
def test_chunks_give_the_one_shot_bytes(bench_script, tmp_path, rows, seed, rate, chunk_rows):
    generator = bench_script("gen_dvf_like")
    path = tmp_path / "dvf.csv"
    generator.generate(path, rows, seed, rate, chunk_rows=chunk_rows)
    assert (_sha256(path), _sha256(generator.sidecar_path(path))) == ONE_SHOT_DIGESTS[(rows, seed, rate)]


def test_chunked_draws_are_numpys_draws(bench_script):
    """Every kind of call, cut into uneven chunks, against numpy drawing it in one go."""
    import numpy as np

    generator = bench_script("gen_dvf_like")
    rows = 10_001
    expected_rng = np.random.default_rng(5)
    expected = [
        expected_rng.integers(0, 3, rows), expected_rng.random(rows), expected_rng.integers(-5_000_000, 8_000_000, rows),
        expected_rng.lognormal(12.0, 1.1, rows), expected_rng.choice(4, size=rows, p=np.array([0.1, 0.2, 0.3, 0.4])),
        expected_rng.integers(0, 1, rows), expected_rng.integers(7, 2**32 + 6, rows),
    ]
    draws = generator.ChunkedDraws(5, rows)
    got: list[list[np.ndarray]] = [[] for _ in expected]
    for first in range(0, rows, 333):
        size = min(333, rows - first)
        draws.start_chunk()
        for index, chunk in enumerate([
            draws.integers(0, 3, size), draws.random(size), draws.integers(-5_000_000, 8_000_000, size),
            draws.lognormal(12.0, 1.1, size), draws.choice(4, size, np.array([0.1, 0.2, 0.3, 0.4])),
            draws.integers(0, 1, size), draws.integers(7, 2**32 + 6, size),
        ]):
            got[index].append(chunk)
    for index, values in enumerate(expected):
        assert np.array_equal(np.concatenate(got[index]), values), f"call {index}"
