"""The benchmark's verdicts: a goal is met, missed, or missed for want of
figures, and ``make bench`` exits non-zero on a miss."""

from benchmarks import goals


def test_a_goal_at_or_past_its_target_passes_with_its_margin():
    goal = goals.Goal('g', 'add >= 0.8 x stage', 0.88, '>=', 0.8)
    assert goal.passed and goal.verdict == 'PASS'
    assert round(goal.margin, 2) == 0.1


def test_a_goal_short_of_its_target_misses():
    goal = goals.Goal('g', 'get >= 0.95 x md5', 0.89, '>=', 0.95)
    assert not goal.passed and goal.verdict == 'MISS'
    assert goal.margin < 0


def test_a_goal_without_figures_misses():
    goal = goals.Goal('g', 'anything', None, '>=', 1)
    assert goal.verdict == 'MISS'


def test_upper_bounds_and_equalities():
    assert goals.Goal('m', 'memory', 5.0, '<=', 8).passed
    assert not goals.Goal('m', 'memory', 9.0, '<=', 8).passed
    assert goals.Goal('r', 'rest calls differ', 0, '==', 0).passed
    assert not goals.Goal('r', 'rest calls differ', 1, '==', 0).passed
