//! Class-balanced (class-aware) sampling as classifier-balancing's `ClassAwareSampler`.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{by_class, full_batches, Sampler};

/// Cycles over classes in shuffled order; each class visit yields `per_visit` images from that
/// class's own shuffled cycle. Cycles are reshuffled when exhausted and persist across epochs.
#[derive(Debug)]
pub struct ClassBalanced {
    classes: RandomCycle,
    members: Vec<RandomCycle>,
    per_visit: usize,
    current: Option<usize>,
    taken: usize,
    n: usize,
}

/// A list visited in random order, reshuffled at each pass (`RandomCycleIter`).
#[derive(Debug)]
struct RandomCycle {
    items: Vec<i64>,
    position: usize,
}

impl RandomCycle {
    fn new(items: Vec<i64>) -> RandomCycle {
        let position = items.len();
        RandomCycle { items, position }
    }

    fn next(&mut self, rng: &mut ChaCha8Rng) -> i64 {
        if self.position == self.items.len() {
            self.items.shuffle(rng);
            self.position = 0;
        }
        self.position += 1;
        self.items[self.position - 1]
    }
}

impl ClassBalanced {
    /// Over training `labels`, `per_visit` images per class visit.
    ///
    /// # Panics
    /// If a class has no image (it could never be visited).
    #[must_use]
    pub fn new(labels: &[i64], classes: usize, per_visit: usize) -> ClassBalanced {
        let members = by_class(labels, classes);
        assert!(members.iter().all(|m| !m.is_empty()), "class-balanced sampling needs every class");
        ClassBalanced {
            classes: RandomCycle::new((0..i64::try_from(classes).expect("fits")).collect()),
            members: members.into_iter().map(RandomCycle::new).collect(),
            per_visit,
            current: None,
            taken: 0,
            n: labels.len(),
        }
    }

    /// The next `count` indices of the class-aware stream (the Meta Sampler's meta batches).
    pub fn draw(&mut self, count: usize, rng: &mut ChaCha8Rng) -> Vec<i64> {
        (0..count).map(|_| self.next_index(rng)).collect()
    }

    fn next_index(&mut self, rng: &mut ChaCha8Rng) -> i64 {
        if self.current.is_none() || self.taken == self.per_visit {
            self.current = Some(usize::try_from(self.classes.next(rng)).expect("class"));
            self.taken = 0;
        }
        self.taken += 1;
        self.members[self.current.expect("set above")].next(rng)
    }
}

impl Sampler for ClassBalanced {
    fn epoch(&mut self, batch: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<i64>> {
        full_batches(self.n, batch, || self.next_index(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{testing, SamplerSpec};

    #[test]
    fn classes_are_equally_frequent() {
        // 3 epochs of 17 batches of 32 = 1,632 draws = 102 full visits of 4 classes x 4 images,
        // so each class gets 1/4 up to one unfinished class cycle (at most 3 visits of 4 images).
        let f = testing::frequencies(&SamplerSpec::ClassBalanced, 3);
        for got in &f {
            assert!((got - 0.25).abs() < 12.0 / 1632.0 + 1e-12, "{f:?}");
        }
    }
}
