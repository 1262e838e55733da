"""Timing ways of doing one job against each other on a shared machine, to choose the fastest.

Why in turns: a slow spell of a busy machine then hits every way alike instead of one (one way
after the other once chose scipy's forward FFT at 1024^2 where torch's is 25 % faster). On one
thread the clock is the process's CPU time, which other jobs disturb far less than the wall
clock; on several threads the wall clock (CPU time would add the threads up)."""
from __future__ import annotations

import time
from typing import Callable


def clock_for(threads: int) -> Callable[[], float]:
    """The clock (seconds) for timing code that runs on `threads` threads."""
    return time.process_time if threads == 1 else time.perf_counter


def best_in_turns(rounds_of: dict, rounds: int = 3, budget_s: float = 0.5, max_rounds: int = 8) -> dict:
    """{name: best seconds of each part} where rounds_of[name]() runs one round of that way and
    returns its parts' times (a tuple of seconds). The ways run in turns: at least `rounds`
    rounds and until `budget_s` of wall time, at most `max_rounds`. Warm-ups are the caller's."""
    best = {name: None for name in rounds_of}
    start, done = time.perf_counter(), 0
    while done < max_rounds and (done < rounds or time.perf_counter() - start < budget_s):
        for name, one_round in rounds_of.items():
            t = tuple(one_round())
            best[name] = t if best[name] is None else tuple(map(min, best[name], t))
        done += 1
    return best


def whole_call(f: Callable[[], object], clock: Callable[[], float]) -> Callable[[], tuple]:
    """A round for best_in_turns that times one call of f as a whole."""
    def one_round():
        t0 = clock()
        f()
        return (clock() - t0,)
    return one_round
