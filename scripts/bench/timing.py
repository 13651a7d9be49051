"""Shared by the benchmark scripts: engines timed in turn, unit by unit, and their ranges."""
import statistics
import time


def best_of(repeats, fn):
    """(the shortest of `repeats` timed calls of `fn`, in seconds, and the last call's value)."""
    times, value = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def alternate(rounds, engines):
    """Times each of `engines` (name → callable) once per round, in turn, for `rounds` rounds,
    as the browser benchmarks do: a change in the machine's load (this 2-core VM is shared)
    hits every engine of a round alike, so per-round ratios are fairer than ratios of bests
    taken minutes apart. Returns ({name: [seconds per round]}, {name: the last call's value})."""
    times = {name: [] for name in engines}
    values = {}
    for _ in range(rounds):
        for name, fn in engines.items():
            t = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - t)
    return times, values


def spread(seconds, digits=4):
    """min / median / max of a list of timings, and the list itself."""
    return {
        "min": round(min(seconds), digits),
        "median": round(statistics.median(seconds), digits),
        "max": round(max(seconds), digits),
        "rounds": [round(s, digits) for s in seconds],
    }


def ratio_range(numerator, denominator, digits=2):
    """Per-round ratios numerator/denominator (e.g. the peer's time over ours: a speedup):
    their min, median and max over the rounds."""
    ratios = [a / b for a, b in zip(numerator, denominator)]
    return {
        "min": round(min(ratios), digits),
        "median": round(statistics.median(ratios), digits),
        "max": round(max(ratios), digits),
    }
