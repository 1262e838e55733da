"""engine.timing: ways are timed in turns, and each part keeps its best time."""
from engine.timing import best_in_turns, whole_call


def test_ways_run_in_turns_and_each_part_keeps_its_best():
    order, times = [], {"a": iter([(3.0, 5.0), (1.0, 6.0), (2.0, 4.0)]), "b": iter([(9.0,), (7.0,), (8.0,)])}

    def way(name):
        return lambda: order.append(name) or next(times[name])
    best = best_in_turns({"a": way("a"), "b": way("b")}, rounds=3, budget_s=0.0)
    assert order == ["a", "b"] * 3                    # A B A B A B: a slow spell hits both
    assert best == {"a": (1.0, 4.0), "b": (7.0,)}     # parts apart: 1 and 4 came from different rounds


def test_rounds_continue_until_the_budget_but_never_past_the_cap():
    calls = []
    best_in_turns({"a": lambda: calls.append(1) or (0.0,)}, rounds=1, budget_s=60.0, max_rounds=5)
    assert len(calls) == 5


def test_a_whole_call_is_timed_on_the_given_clock():
    ticks = iter([10.0, 12.5])
    ran = []
    assert whole_call(lambda: ran.append(1), lambda: next(ticks))() == (2.5,) and ran == [1]
