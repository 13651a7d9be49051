//! Ways to report other than honestly: each keeps something of a truthful report (its
//! words, its start, its form) or of another report, and loses the information about the
//! item that the peer's report shares.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;

use super::Item;

/// The generic definition that fits every noun and says nothing about any.
pub const GENERIC: &str = "a thing or a kind of thing";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Manipulation {
    /// The report's words in a seeded random order.
    Shuffled,
    /// The report's first half (by words, at least one word).
    Truncated,
    /// [`GENERIC`].
    Generic,
    /// Another item's honest report (a seeded choice).
    OtherWord,
    /// The peer's report itself.
    Copied,
}

impl Manipulation {
    pub const ALL: [Manipulation; 5] = [
        Manipulation::Shuffled,
        Manipulation::Truncated,
        Manipulation::Generic,
        Manipulation::OtherWord,
        Manipulation::Copied,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Manipulation::Shuffled => "shuffled",
            Manipulation::Truncated => "truncated",
            Manipulation::Generic => "generic",
            Manipulation::OtherWord => "other_word",
            Manipulation::Copied => "copied",
        }
    }

    /// The manipulated report of `items[i]`. `items` has at least two entries (checked by
    /// the caller); `rng` makes shuffles and the other word reproducible.
    pub fn apply<R: Rng>(self, items: &[Item], i: usize, rng: &mut R) -> String {
        let report = &items[i].report;
        let words: Vec<&str> = report.split_whitespace().collect();
        match self {
            Manipulation::Shuffled => {
                let mut shuffled = words.clone();
                // A few tries for an order that differs when the words allow one.
                for _ in 0..8 {
                    shuffled.shuffle(rng);
                    if shuffled != words {
                        break;
                    }
                }
                shuffled.join(" ")
            }
            Manipulation::Truncated => words[..words.len().div_ceil(2)].join(" "),
            Manipulation::Generic => GENERIC.to_string(),
            Manipulation::OtherWord => items[other_index(items.len(), i, rng)].report.clone(),
            Manipulation::Copied => items[i].peer.clone(),
        }
    }
}

/// A seeded index other than `i` in `0..n` (n ≥ 2).
pub(crate) fn other_index<R: Rng>(n: usize, i: usize, rng: &mut R) -> usize {
    (i + 1 + rng.random_range(0..n - 1)) % n
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn items() -> Vec<Item> {
        vec![
            Item::new("cat", "a small furry animal kept as a pet", "a feline"),
            Item::new("oak", "a tree that bears acorns", "a large tree"),
        ]
    }

    #[test]
    fn manipulations_change_the_report_as_named() {
        let items = items();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let shuffled = Manipulation::Shuffled.apply(&items, 0, &mut rng);
        assert_ne!(shuffled, items[0].report);
        let mut a: Vec<&str> = shuffled.split(' ').collect();
        let mut b: Vec<&str> = items[0].report.split(' ').collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(
            Manipulation::Truncated.apply(&items, 0, &mut rng),
            "a small furry animal"
        );
        assert_eq!(Manipulation::Generic.apply(&items, 1, &mut rng), GENERIC);
        assert_eq!(
            Manipulation::OtherWord.apply(&items, 0, &mut rng),
            items[1].report
        );
        assert_eq!(
            Manipulation::Copied.apply(&items, 1, &mut rng),
            "a large tree"
        );
    }

    #[test]
    fn shuffles_are_seeded() {
        let items = items();
        let a = Manipulation::Shuffled.apply(&items, 0, &mut ChaCha8Rng::seed_from_u64(5));
        let b = Manipulation::Shuffled.apply(&items, 0, &mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(a, b);
    }
}
