//! Small summaries several labs report: the mean, and the percentile interval of bootstrap
//! resamples (Repoformer's policies, information elicitation's comparisons).

/// The mean of `values`; NaN when there are none.
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in values {
        sum += x;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// The 2.5th and 97.5th percentiles (nearest rank) of `values`; None for no values.
pub fn percentile_interval(mut values: Vec<f64>) -> Option<[f64; 2]> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let last = values.len() - 1;
    let at = |q: f64| values[((q * last as f64).round() as usize).min(last)];
    Some([at(0.025), at(0.975)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_interval() {
        assert_eq!(mean([1.0, 2.0, 6.0]), 3.0);
        assert!(mean([]).is_nan());
        let v: Vec<f64> = (0..=1000).map(f64::from).collect();
        assert_eq!(percentile_interval(v), Some([25.0, 975.0]));
        assert_eq!(percentile_interval(Vec::new()), None);
    }
}
