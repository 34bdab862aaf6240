"""Bradley-Terry ratings from pairwise battles, with bootstrap 95% confidence intervals.

The model: player i beats player j with probability 1 / (1 + exp(theta_j - theta_i)).
A tie counts as half a win for each side (the issue's rule, as in Chatbot Arena). The
strengths are fitted by maximum likelihood with Newton's method; a weak Gaussian prior
(standard deviation `PRIOR_SD` Elo points around the average) keeps a player who never lost
or never won finite, and is far too weak to move players with more than a few battles.

Ratings are reported on an Elo-like scale: 400 * log10(odds) + 1000, so the average player
is 1000 and a player 400 points above another wins 10 times out of 11. Only differences
mean anything; the mean is anchored at 1000 because the likelihood ignores a common shift.

Intervals: resample the battles with replacement (`rounds` times, seeded), refit each
sample and take the 2.5th and 97.5th percentiles of each player's rating. Resampling
battles is a multinomial draw over the distinct (pair, outcome) cells, so the cost grows
with the number of distinct cells, not of battles, and all samples are fitted together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import TllmError

ELO_PER_NAT = 400 / math.log(10)  # one unit of theta (natural-log odds) in Elo points
BASE_RATING = 1000.0
PRIOR_SD = 1000.0  # Elo points; the prior only matters for players who never lost or never won
SCORES = {"a": 1.0, "b": 0.0, "tie": 0.5}  # what a verdict is worth to the first player


@dataclass
class Rating:
    name: str
    rating: float  # Elo-like: 400 * log10(odds) + 1000, mean anchored at 1000
    low: float  # 95% bootstrap percentile interval
    high: float
    battles: int
    wins: int
    ties: int
    losses: int

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "rating": round(self.rating, 1),
            "ci_low": round(self.low, 1),
            "ci_high": round(self.high, 1),
            "battles": self.battles,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
        }


def fit_ratings(
    battles: Iterable[tuple[str, str, str]], rounds: int = 200, seed: int = 0
) -> list[Rating]:
    """Ratings, best first, from (player_a, player_b, verdict) triples, verdict "a", "b" or
    "tie"; `rounds` bootstrap resamples give the intervals (0 = no intervals: low = high =
    the rating)."""
    battles = list(battles)
    if not battles:
        raise TllmError("no decided battles to rate yet: run `tllm arena` first")
    names = sorted({n for a, b, _ in battles for n in (a, b)})
    index = {name: i for i, name in enumerate(names)}
    firsts: list[int] = []  # per battle: player a's index, player b's, a's score
    seconds: list[int] = []
    scores: list[float] = []
    for a, b, verdict in battles:
        if verdict not in SCORES:
            raise TllmError(f"unknown verdict {verdict!r}: use one of {', '.join(SCORES)}")
        if a == b:
            raise TllmError(f"a battle of {a!r} against itself cannot be rated")
        firsts.append(index[a])
        seconds.append(index[b])
        scores.append(SCORES[verdict])
    first, second, score = np.array(firsts), np.array(seconds), np.array(scores)

    cells, counts = _cells(first, second, score, len(names))
    theta = fit_strengths(_tables(cells, counts[None, :], len(names)))[0]
    if rounds > 0:
        rng = np.random.default_rng(seed)
        resampled = rng.multinomial(len(battles), counts / counts.sum(), size=rounds)
        samples = fit_strengths(_tables(cells, resampled, len(names)))
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    else:
        low = high = theta

    ratings = []
    for i, name in enumerate(names):
        as_a, as_b = first == i, second == i
        wins = int(((score == 1) & as_a).sum() + ((score == 0) & as_b).sum())
        ties = int(((score == 0.5) & (as_a | as_b)).sum())
        total = int((as_a | as_b).sum())
        ratings.append(
            Rating(
                name,
                float(to_elo(theta[i])),
                float(to_elo(low[i])),
                float(to_elo(high[i])),
                total,
                wins,
                ties,
                total - wins - ties,
            )
        )
    return sorted(ratings, key=lambda r: (-r.rating, r.name))


def to_elo(theta):
    """Natural-log strength (mean 0) -> the Elo-like scale (mean 1000)."""
    return BASE_RATING + ELO_PER_NAT * theta


def _cells(first, second, score, n: int):
    """The distinct (first, second, score) battle kinds and how often each happened."""
    code = (first * n + second) * 3 + (score * 2).astype(int)
    kinds, counts = np.unique(code, return_counts=True)
    cells = (kinds // 3 // n, kinds // 3 % n, (kinds % 3) / 2)
    return cells, counts.astype(float)


def _tables(cells, counts, n: int):
    """Per sample, wins[s, i, j] = points i took from j (ties half) and games[s, i, j] =
    battles between i and j, from `counts[s, k]` battles of cell kind k."""
    first, second, score = cells
    samples = counts.shape[0]
    wins = np.zeros((samples, n, n))
    # numpy's stubs leave out the tuple of index arrays that ufunc.at takes (and documents)
    np.add.at(wins, (slice(None), first, second), counts * score)  # type: ignore[arg-type]
    np.add.at(wins, (slice(None), second, first), counts * (1 - score))  # type: ignore[arg-type]
    return wins, wins + wins.transpose(0, 2, 1)


def fit_strengths(
    tables, prior_sd: float = PRIOR_SD, tol: float = 1e-10, max_steps: int = 100
) -> np.ndarray:
    """Maximum a posteriori strengths theta[s, i] (natural-log odds, mean 0) for each sample
    s of (wins, games) tables, by Newton's method with step halving, all samples at once."""
    wins, games = tables
    samples, n, _ = wins.shape
    precision = (ELO_PER_NAT / prior_sd) ** 2  # the prior in theta units
    theta = np.zeros((samples, n))
    value = _log_posterior(theta, wins, precision)
    for _ in range(max_steps):
        p = _win_probability(theta)
        weight = games * p * p.transpose(0, 2, 1)  # variance of each battle's outcome
        gradient = (wins - games * p).sum(axis=2) - precision * theta
        hessian = weight - np.eye(n) * (weight.sum(axis=2) + precision)[:, :, None]
        step = np.linalg.solve(-hessian, gradient[:, :, None])[:, :, 0]
        scale = np.ones(samples)
        for _ in range(30):  # halve the step where it would lower the posterior
            trial = theta + scale[:, None] * step
            trial_value = _log_posterior(trial, wins, precision)
            worse = trial_value < value - 1e-12
            if not worse.any():
                break
            scale[worse] /= 2
        theta, value = trial, trial_value
        if np.abs(scale[:, None] * step).max() < tol:
            break
    return theta - theta.mean(axis=1, keepdims=True)


def _win_probability(theta):
    """p[s, i, j]: the chance that i beats j."""
    return 1 / (1 + np.exp(theta[:, None, :] - theta[:, :, None]))


def _log_posterior(theta, wins, precision):
    log_p = -np.logaddexp(0, theta[:, None, :] - theta[:, :, None])
    return (wins * log_p).sum(axis=(1, 2)) - precision / 2 * (theta**2).sum(axis=1)
