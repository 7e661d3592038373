"""The demo's verdict: its numbers are the eval files', its interval pairs episodes, and its
sentence follows from the interval."""

import pytest

from saliency_rl.experiments.verdict import compute_verdict, paired_difference


def evals(successes=None, returns=None):
    episodes = [
        {"episode_return": r, "success": s}
        for r, s in zip(returns, successes or [None] * len(returns), strict=True)
    ]
    mean = sum(returns) / len(returns)
    return {"per_episode": episodes, "return_mean": mean}


def arms(without_clean, without_dist, with_clean, with_dist, success=True):
    def one(values):
        return evals([bool(v) for v in values] if success else None, [100.0 * v for v in values])

    return {
        "rgb": {"clean": one(without_clean), "distracted": one(without_dist)},
        "rgb_x_saliency": {"clean": one(with_clean), "distracted": one(with_dist)},
    }


def test_helped_hurt_or_no_difference_follows_the_interval():
    ones, zeros = [1] * 20, [0] * 20
    helped = compute_verdict(arms(ones, zeros, ones, [1] * 10 + [0] * 10), "video_easy")
    assert helped.metric == "success rate"
    assert helped.with_saliency.kept == 0.5 and helped.without.kept == 0.0
    assert helped.distracted_difference[0] == 0.5 and helped.distracted_difference[1] > 0
    assert "saliency helped" in helped.sentence and "50 % (100 % -> 50 %)" in helped.sentence
    hurt = compute_verdict(arms(ones, ones, ones, zeros), "video_easy")
    assert "saliency hurt" in hurt.sentence
    same = compute_verdict(arms(ones, [1, 0] * 10, ones, [0, 1] * 10), "video_easy")
    assert "no difference" in same.sentence
    assert same.distracted_difference[1] < 0 < same.distracted_difference[2]
    nothing = compute_verdict(arms(zeros, zeros, ones, ones), "video_easy")
    assert nothing.without.kept is None and "nothing (its clean" in nothing.sentence
    assert "return clean / distracted" in helped.text()


def test_returns_where_there_is_no_success_and_pairs_by_episode():
    verdict = compute_verdict(arms([1, 2], [1, 1], [3, 4], [2, 3], success=False), "video_hard")
    assert verdict.metric == "return"
    assert verdict.with_saliency.clean == pytest.approx(350.0)
    assert verdict.without.distracted_return == pytest.approx(100.0)
    # Paired: a constant difference has a zero-width interval, whatever the spread.
    import numpy as np

    base = np.arange(50.0)
    assert paired_difference(base, base + 2.0) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="two arms"):
        compute_verdict({"a": {}}, "x")
