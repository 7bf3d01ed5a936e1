"""The span-corruption length arithmetic shared by data prep, collator and config validation."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from data_prep.span_lengths import corrupted_lengths, noise_counts, raw_length_for_inputs


@pytest.mark.parametrize("raw, inputs, targets", [(1193, 1024, 189), (1024, 879, 163)])
def test_published_byt5_lengths(raw, inputs, targets):
    assert corrupted_lengths(raw) == (inputs, targets)


def test_raw_length_for_1024_inputs_is_1193():
    assert raw_length_for_inputs(1024) == 1193


@settings(max_examples=200, deadline=None)
@given(st.integers(20, 5000), st.sampled_from([0.15, 0.1, 0.3, 0.5]), st.sampled_from([3.0, 20.0, 8.0]))
def test_raw_length_is_the_largest_that_fits(inputs_length, density, mu):
    raw = raw_length_for_inputs(inputs_length, density, mu)
    # Brute force over every candidate, with T5's helper formula written out independently.
    def fits(t):
        n = int(round(t * density))
        s = int(round(n / mu))
        return t - n + s + 1 <= inputs_length
    assert fits(raw)
    assert not any(fits(t) for t in range(raw + 1, raw + 200))


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 20000))
def test_noise_counts_follow_seqio(length):
    num_noise, num_spans = noise_counts(length)
    expected_noise = min(max(int(np.round(np.float32(length) * np.float32(0.15))), 1), length - 1)
    assert num_noise == expected_noise
    assert 1 <= num_spans <= num_noise
    assert corrupted_lengths(length) == (length - num_noise + num_spans + 1, num_noise + num_spans + 1)
