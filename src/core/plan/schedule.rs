//! The optimal schedule with unlimited parallelism: the critical-path method, run once on
//! the low ends of the step durations and once on the high ends.

use serde::Serialize;

use super::{humanize, Plan, Seconds};

/// Timing of one step in the optimal schedule. Each field is a `[low, high]` range: the
/// low end is computed from every step's low duration, the high end from the high ones.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepTiming {
    pub id: String,
    pub duration: Seconds,
    pub earliest_start: Seconds,
    pub earliest_finish: Seconds,
    pub latest_start: Seconds,
    pub latest_finish: Seconds,
    /// How long the step can slip without delaying the plan.
    pub slack: Seconds,
    /// On a longest path under the high durations (zero high slack).
    pub critical: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub title: String,
    /// The longest START→END path: the shortest time with unlimited parallelism.
    pub optimal_seconds: Seconds,
    /// Every step one after another.
    pub sequential_seconds: Seconds,
    /// sequential / optimal for the low and the high ends; `None` where optimal is zero.
    pub speedup: [Option<f64>; 2],
    /// Step ids of one longest path under the high durations, first step first. Among
    /// equally long paths the one through the lowest step indices is reported.
    pub critical_path: Vec<String>,
    /// `optimal_seconds` and `sequential_seconds` for people: "1 h 25 min".
    pub optimal_text: String,
    pub sequential_text: String,
    pub steps: Vec<StepTiming>,
}

/// Forward and backward passes for one end of the duration ranges.
struct Pass {
    earliest_start: Vec<f64>,
    earliest_finish: Vec<f64>,
    latest_finish: Vec<f64>,
    makespan: f64,
}

fn pass(plan: &Plan, duration: impl Fn(usize) -> f64) -> Pass {
    let n = plan.steps().len();
    let order = plan.topological_order();
    let mut earliest_start = vec![0.0; n];
    let mut earliest_finish = vec![0.0; n];
    for &i in order {
        let start = plan
            .predecessors(i)
            .iter()
            .map(|&p| earliest_finish[p])
            .fold(0.0, f64::max);
        earliest_start[i] = start;
        earliest_finish[i] = start + duration(i);
    }
    let makespan = earliest_finish.iter().copied().fold(0.0, f64::max);
    let mut latest_finish = vec![makespan; n];
    for &i in order.iter().rev() {
        latest_finish[i] = plan
            .successors(i)
            .iter()
            .map(|&s| latest_finish[s] - duration(s))
            .fold(makespan, f64::min);
    }
    Pass {
        earliest_start,
        earliest_finish,
        latest_finish,
        makespan,
    }
}

/// Sums of integer seconds are exact in f64, but user durations may be fractional.
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

pub fn analyze(plan: &Plan) -> Analysis {
    let steps = plan.steps();
    let low = pass(plan, |i| steps[i].duration.low);
    let high = pass(plan, |i| steps[i].duration.high);
    let range = |l: f64, h: f64| Seconds { low: l, high: h };

    let timings: Vec<StepTiming> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let latest_start = range(
                low.latest_finish[i] - step.duration.low,
                high.latest_finish[i] - step.duration.high,
            );
            let slack = range(
                (latest_start.low - low.earliest_start[i]).max(0.0),
                (latest_start.high - high.earliest_start[i]).max(0.0),
            );
            StepTiming {
                id: step.id.clone(),
                duration: step.duration,
                earliest_start: range(low.earliest_start[i], high.earliest_start[i]),
                earliest_finish: range(low.earliest_finish[i], high.earliest_finish[i]),
                latest_start,
                latest_finish: range(low.latest_finish[i], high.latest_finish[i]),
                slack,
                critical: same(slack.high, 0.0),
            }
        })
        .collect();

    let sequential = steps.iter().fold(Seconds::ZERO, |acc, s| acc + s.duration);
    let ratio = |seq: f64, opt: f64| (opt > 0.0).then(|| seq / opt);

    Analysis {
        title: plan.title().to_string(),
        optimal_seconds: range(low.makespan, high.makespan),
        sequential_seconds: sequential,
        speedup: [
            ratio(sequential.low, low.makespan),
            ratio(sequential.high, high.makespan),
        ],
        critical_path: critical_path(plan, &high),
        optimal_text: humanize(range(low.makespan, high.makespan)),
        sequential_text: humanize(sequential),
        steps: timings,
    }
}

/// Walks back from the first sink that finishes last, each time to the first predecessor
/// that finishes exactly when the current step starts.
fn critical_path(plan: &Plan, high: &Pass) -> Vec<String> {
    let steps = plan.steps();
    // A sink, not just any step finishing last: a zero-length step may follow it.
    let Some(mut current) = (0..steps.len())
        .find(|&i| plan.successors(i).is_empty() && same(high.earliest_finish[i], high.makespan))
    else {
        return Vec::new();
    };
    let mut path = vec![current];
    while let Some(&previous) = plan
        .predecessors(current)
        .iter()
        .filter(|&&p| same(high.earliest_finish[p], high.earliest_start[current]))
        .min()
    {
        path.push(previous);
        current = previous;
    }
    path.reverse();
    path.into_iter().map(|i| steps[i].id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{edges, step};
    use super::*;

    fn tea() -> Plan {
        // boil (5) -> steep (3) -> drink (2); cup (1) -> steep; read (20) alone.
        Plan::new(
            "How to make tea",
            vec![
                step("boil", "5 min"),
                step("cup", "1 min"),
                step("steep", "3 min"),
                step("drink", "2 min"),
                step("read", "20 min"),
            ],
            &edges(&[("boil", "steep"), ("cup", "steep"), ("steep", "drink")]),
        )
        .unwrap()
    }

    #[test]
    fn optimal_sequential_and_critical_path() {
        let a = analyze(&tea());
        assert_eq!(
            a.optimal_seconds,
            Seconds {
                low: 1200.0,
                high: 1200.0
            }
        );
        assert_eq!(
            a.sequential_seconds,
            Seconds {
                low: 1860.0,
                high: 1860.0
            }
        );
        assert_eq!(a.critical_path, vec!["read"]);
        assert_eq!(a.speedup, [Some(1.55), Some(1.55)]);
    }

    #[test]
    fn earliest_latest_and_slack() {
        let a = analyze(&tea());
        let by_id = |id: &str| a.steps.iter().find(|s| s.id == id).unwrap().clone();
        let steep = by_id("steep");
        assert_eq!(steep.earliest_start.high, 300.0);
        assert_eq!(steep.earliest_finish.high, 480.0);
        // drink must end by 1200 s, so steep by 1080 s.
        assert_eq!(steep.latest_finish.high, 1080.0);
        assert_eq!(steep.slack.high, 600.0);
        assert_eq!(by_id("cup").slack.high, 840.0);
        assert!(by_id("read").critical);
        assert!(!by_id("boil").critical);
    }

    #[test]
    fn chain_is_critical_and_ranges_stay_separate() {
        let plan = Plan::new(
            "t",
            vec![
                step("a", "1 month"),
                step("b", "10 days"),
                step("c", "40 days"),
            ],
            &edges(&[("a", "b")]),
        )
        .unwrap();
        let a = analyze(&plan);
        // Low: a+b = 38 days vs c = 40 days; high: 41 days vs 40 days.
        assert_eq!(a.optimal_seconds.low, 40.0 * 86_400.0);
        assert_eq!(a.optimal_seconds.high, 41.0 * 86_400.0);
        assert_eq!(a.critical_path, vec!["a", "b"]);
    }

    #[test]
    fn ties_pick_the_lowest_indices() {
        let plan = Plan::new(
            "t",
            vec![step("a", "1 min"), step("b", "1 min"), step("c", "1 min")],
            &edges(&[("a", "c"), ("b", "c")]),
        )
        .unwrap();
        assert_eq!(analyze(&plan).critical_path, vec!["a", "c"]);
    }

    #[test]
    fn zero_durations_have_no_speedup() {
        let plan = Plan::new("t", vec![step("a", "0 min")], &[]).unwrap();
        assert_eq!(analyze(&plan).speedup, [None, None]);
    }
}
