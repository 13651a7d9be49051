"""Shared by the benchmark scripts: the best wall time of a few calls."""
import time


def best_of(repeats, fn):
    """(the shortest of `repeats` timed calls of `fn`, in seconds, and the last call's value)."""
    times, value = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value
