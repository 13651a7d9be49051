//! Sizes that come from the user, checked before anything is allocated.
//!
//! A length computed from a JS number, a file header, `n × m`, `n^k` or a token count is
//! multiplied with checked arithmetic and held against a memory budget. Checked arithmetic
//! alone is not enough: a product that fits in `usize` can still be more memory than there
//! is, and a failed allocation does not return an error — in wasm it aborts the whole module
//! (the page loses it), natively the process. The default budget fits a browser tab (1 GiB in
//! wasm32, whose memory cannot pass 4 GiB) and is 16 GiB natively; `set_memory_budget`
//! changes it (JS `setMemoryBudget`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget a fresh process or module starts with, in bytes.
pub const DEFAULT_MEMORY_BUDGET: usize = if cfg!(target_pointer_width = "32") {
    1 << 30
} else {
    16 << 30
};

static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_MEMORY_BUDGET);

/// The budget in bytes: no one allocation sized by user input may be larger.
pub fn memory_budget() -> usize {
    BUDGET.load(Ordering::Relaxed)
}

/// Sets the budget (bytes, at least 1 MiB).
pub fn set_memory_budget(bytes: usize) -> Result<(), SizeError> {
    if bytes < 1 << 20 {
        return Err(SizeError::BudgetTooSmall { bytes });
    }
    BUDGET.store(bytes, Ordering::Relaxed);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("{what}: {dims} overflows")]
    Overflow { what: String, dims: String },
    #[error(
        "{what}: {dims} needs {bytes} bytes, more than the memory budget of {budget} bytes \
         (use smaller sizes, or raise the budget)"
    )]
    OverBudget {
        what: String,
        dims: String,
        bytes: u128,
        budget: usize,
    },
    #[error("a memory budget of {bytes} bytes is too small: give at least 1 MiB (1048576)")]
    BudgetTooSmall { bytes: usize },
}

fn named(dims: &[(&str, usize)]) -> String {
    dims.iter()
        .map(|(name, d)| format!("{name} {d}"))
        .collect::<Vec<_>>()
        .join(" × ")
}

/// `dims` multiplied, or an error naming `what` and every dimension when that overflows.
fn product(what: &str, dims: &[(&str, usize)]) -> Result<usize, SizeError> {
    dims.iter()
        .try_fold(1usize, |a, &(_, d)| a.checked_mul(d))
        .ok_or_else(|| SizeError::Overflow {
            what: what.to_string(),
            dims: named(dims),
        })
}

/// The number of elements `dims` multiply to, when that many elements of `element_bytes`
/// each fit the budget; else an error naming `what` and every dimension.
pub fn checked_len(
    what: &str,
    dims: &[(&str, usize)],
    element_bytes: usize,
) -> Result<usize, SizeError> {
    let count = product(what, dims)?;
    check_bytes(what, named(dims), count as u128 * element_bytes as u128)?;
    Ok(count)
}

/// `bytes` (described by `dims`) against the budget, for sizes already summed by the caller.
pub fn check_bytes(what: &str, dims: impl Into<String>, bytes: u128) -> Result<(), SizeError> {
    let budget = memory_budget();
    if bytes > budget as u128 {
        return Err(SizeError::OverBudget {
            what: what.to_string(),
            dims: dims.into(),
            bytes,
            budget,
        });
    }
    Ok(())
}

/// One of several allocations that live together: what it is, its named dimensions, and the
/// bytes of one element.
pub type Part<'a> = (&'a str, &'a [(&'a str, usize)], usize);

/// Several allocations that live together: their total bytes against the budget.
pub fn check_together(what: &str, parts: &[Part]) -> Result<(), SizeError> {
    let mut total: u128 = 0;
    for (part, dims, element_bytes) in parts {
        total += product(&format!("{what}, {part}"), dims)? as u128 * *element_bytes as u128;
    }
    let dims = parts
        .iter()
        .map(|(part, dims, _)| format!("{part} ({})", named(dims)))
        .collect::<Vec<_>>()
        .join(" + ");
    check_bytes(what, dims, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_budget_are_named_errors() {
        let e = checked_len("x", &[("n", usize::MAX), ("dim", 2)], 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("x: n {} × dim 2 overflows", usize::MAX)
        );
        let e = checked_len("tensor", &[("n", 1 << 20), ("m", 1 << 20)], 4).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("tensor: n 1048576 × m 1048576 needs 4398046511104 bytes, more than"),
            "{e}"
        );
        assert_eq!(checked_len("x", &[("n", 3), ("dim", 5)], 4), Ok(15));
        assert_eq!(checked_len("x", &[], 4), Ok(1));
        let e = check_together(
            "collapse",
            &[("design", &[("t", 1 << 40), ("d", 1 << 20)], 8)],
        );
        assert!(e.is_err());
        assert!(check_together("collapse", &[("design", &[("t", 100), ("d", 10)], 8)]).is_ok());
        assert!(set_memory_budget(10).is_err());
    }
}
