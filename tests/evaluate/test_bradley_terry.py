"""Bradley-Terry ratings recover known strengths, with honest 95% intervals, and a tie is
worth half a win.

Synthetic battles are drawn from the model's own definition: a player rated r_i beats one
rated r_j with probability 1 / (1 + 10 ** ((r_j - r_i) / 400)). Only rating differences are
identified, so the truth is anchored the way the fit is: mean 1000."""

from __future__ import annotations

import numpy as np
import pytest

from together_llm.errors import TllmError
from together_llm.evaluate.bradley_terry import fit_ratings

TRUE = {"ant": 1200.0, "bee": 1100.0, "cat": 1000.0, "dog": 950.0, "eel": 750.0}


def synthetic_battles(rng, count: int, true=TRUE) -> list[tuple[str, str, str]]:
    names = list(true)
    battles = []
    for _ in range(count):
        i, j = rng.choice(len(names), size=2, replace=False)
        a, b = names[i], names[j]
        a_wins = rng.random() < 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
        battles.append((a, b, "a" if a_wins else "b"))
    return battles


def anchored(true=TRUE) -> dict[str, float]:
    mean = np.mean(list(true.values()))
    return {name: value - mean + 1000 for name, value in true.items()}


def test_recovers_the_order_and_the_ratings_of_known_strengths():
    ratings = fit_ratings(synthetic_battles(np.random.default_rng(7), 1500), rounds=200, seed=1)
    assert [r.name for r in ratings] == sorted(TRUE, key=TRUE.get, reverse=True)
    truth = anchored()
    for r in ratings:
        assert abs(r.rating - truth[r.name]) < 40, (r.name, r.rating, truth[r.name])
        assert r.low < r.rating < r.high
        assert r.wins + r.losses == r.battles and r.ties == 0
    assert sum(r.battles for r in ratings) == 2 * 1500


def test_95_percent_intervals_cover_the_true_ratings_in_most_repetitions():
    """20 independent datasets x 5 players = 100 chances for an interval to miss. At a true
    95% coverage about 5 miss; percentile bootstrap intervals run a little narrow, so we ask
    for at least 85 of 100, which a correct fit passes with room to spare while an interval
    centred on a biased estimate or too narrow by half fails. The intervals must also be
    informative: on average narrower than the 100-point gap between neighbours, so a method
    could not pass by drawing huge intervals."""
    truth = anchored()
    covered, widths = 0, []
    for repetition in range(20):
        rng = np.random.default_rng(1000 + repetition)
        ratings = fit_ratings(synthetic_battles(rng, 1500), rounds=200, seed=repetition)
        for r in ratings:
            covered += r.low <= truth[r.name] <= r.high
            widths.append(r.high - r.low)
    assert covered >= 85, f"true ratings inside only {covered} of 100 intervals"
    assert np.mean(widths) < 100, f"intervals {np.mean(widths):.0f} points wide on average"


def test_a_tie_counts_as_half_a_win():
    two_ties = fit_ratings([("ant", "bee", "tie")] * 2, rounds=0)
    split = fit_ratings([("ant", "bee", "a"), ("ant", "bee", "b")], rounds=0)
    assert {r.name: r.rating for r in two_ties} == pytest.approx({"ant": 1000, "bee": 1000})
    assert {r.name: r.rating for r in split} == pytest.approx({r.name: r.rating for r in two_ties})
    assert [(r.wins, r.ties, r.losses) for r in two_ties] == [(0, 2, 0), (0, 2, 0)]

    # A player who only ever ties with bee is rated as bee, whatever bee did elsewhere.
    battles = [("ant", "bee", "tie")] * 20 + [("bee", "cat", "a")] * 15 + [("cat", "bee", "a")] * 5
    ratings = {r.name: r.rating for r in fit_ratings(battles, rounds=0)}
    assert ratings["ant"] == pytest.approx(ratings["bee"], abs=2)
    assert ratings["bee"] - ratings["cat"] > 150  # 15 of 20 is about 190 points


def test_an_unbeaten_player_is_rated_first_and_finite():
    ratings = fit_ratings([("ant", "bee", "a")] * 10 + [("bee", "cat", "a")] * 10, rounds=50)
    assert [r.name for r in ratings] == ["ant", "bee", "cat"]
    assert all(np.isfinite([r.rating, r.low, r.high]).all() for r in ratings)


def test_bad_battles_are_refused():
    with pytest.raises(TllmError, match="no decided battles"):
        fit_ratings([])
    with pytest.raises(TllmError, match="unknown verdict 'draw'"):
        fit_ratings([("ant", "bee", "draw")])
    with pytest.raises(TllmError, match="against itself"):
        fit_ratings([("ant", "ant", "a")])
