//! The matrix bar's time estimate. Each pending run's cost comes from the plan (the images it
//! trains on, and what kind of run it is); seconds per image are measured per kind as runs
//! finish. An average over the runs so far jumps when slow runs (the Meta Sampler) follow fast
//! ones; this estimate prices every run by its own work from the start.

use std::collections::HashMap;
use std::time::Instant;

use crate::matrix::{Cell, Scheme};
use crate::train::schedule::Timeline;

/// What a run's time per image depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    /// End-to-end training (and stage 1): the backbone forward and backward.
    EndToEnd,
    /// Stage 2 on the frozen backbone's features: a classifier only, or the backbone's forward
    /// when the features are recomputed per batch.
    Stage2 {
        /// Whether the backbone runs for every batch (`stage2.features` not cached).
        backbone: bool,
    },
    /// Stage 2 with the Meta Sampler or Reweighter: a one-step look-ahead per iteration.
    Meta,
}

impl Kind {
    /// Seconds per image relative to end-to-end training, used for a kind until one of its runs
    /// has finished: a classifier on cached features costs little; a backbone forward about a
    /// third of a training step; a Meta Sampler iteration about 9x to 80x a plain stage-2 one
    /// (`just bench`), so about an end-to-end step.
    fn prior(self) -> f64 {
        match self {
            Kind::EndToEnd | Kind::Meta => 1.0,
            Kind::Stage2 { backbone: false } => 0.05,
            Kind::Stage2 { backbone: true } => 0.35,
        }
    }
}

/// A run's planned work: its kind, and the images it trains on (iterations times batch size;
/// 0 for post-hoc methods, which train nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Cost {
    /// What its time per image depends on.
    pub kind: Kind,
    /// Training images processed.
    pub images: f64,
}

impl Cost {
    /// The planned cost of `cell`'s runs; `train_images` is the training set's size where the
    /// plan cannot know it (an image-list dataset, read before anything trains).
    pub fn of(cell: &Cell, train_images: Option<usize>) -> Cost {
        // The planned class counts, for the official epochs' iteration counts where a cell
        // steps per epoch; image-list datasets count iterations per iteration.
        let counts = cell.column.dataset.class_counts(cell.column.imbalance);
        match &cell.method.scheme {
            Scheme::EndToEnd(s) => {
                let n: usize =
                    train_images.unwrap_or_else(|| counts.as_ref().map_or(0, |c| c.iter().sum()));
                let per_epoch = (n as u64).div_ceil(u64::from(s.batch_size)).max(1);
                let iterations = counts
                    .as_deref()
                    .and_then(|c| {
                        let (batch, sampler) = (s.batch_size as usize, &s.sampler);
                        let (length, warmup) = (s.length, s.schedule.warmup);
                        Timeline::new(s.schedule.stepping, c, batch, sampler, length, warmup).ok()
                    })
                    .map_or_else(|| s.length.iterations(per_epoch), |t| t.iterations());
                Cost { kind: Kind::EndToEnd, images: (iterations * u64::from(s.batch_size)) as f64 }
            }
            Scheme::Decoupled(s) if s.classifier.is_post_hoc() => {
                Cost { kind: Kind::Stage2 { backbone: false }, images: 0.0 }
            }
            Scheme::Decoupled(s) => {
                let kind = if s.sampler.meta().is_some() {
                    Kind::Meta
                } else {
                    Kind::Stage2 { backbone: s.features != crate::vocab::Features::Cached }
                };
                let iterations = counts
                    .as_deref()
                    .and_then(|c| Timeline::of_stage2(s, c).ok())
                    .map_or(u64::from(s.iterations), |t| t.iterations());
                let images = (iterations * u64::from(s.batch_size)) as f64;
                Cost { kind, images }
            }
        }
    }
}

/// The estimate over a matrix's pending runs.
pub(super) struct Eta {
    costs: Vec<Cost>,
    started: Vec<Option<Instant>>,
    done: Vec<bool>,
    /// Per kind: seconds and images of its finished runs.
    measured: HashMap<Kind, (f64, f64)>,
    /// Runs trained at once (`--jobs`).
    workers: usize,
}

impl Eta {
    /// An estimate for runs of these costs, `workers` at a time.
    pub fn new(costs: Vec<Cost>, workers: usize) -> Eta {
        let n = costs.len();
        Eta {
            costs,
            started: vec![None; n],
            done: vec![false; n],
            measured: HashMap::new(),
            workers: workers.max(1),
        }
    }

    /// Run `i` starts now.
    pub fn start(&mut self, i: usize) {
        if let Some(slot) = self.started.get_mut(i) {
            *slot = Some(Instant::now());
        }
    }

    /// Run `i` is over (trained, failed or skipped); its time counts when it trained.
    pub fn finish(&mut self, i: usize, trained: bool) {
        let seconds = self.started.get(i).copied().flatten().map(|t| t.elapsed().as_secs_f64());
        self.finish_after(i, trained.then_some(seconds).flatten());
    }

    /// Run `i` is over after `seconds` of training (none: it did not train).
    pub fn finish_after(&mut self, i: usize, seconds: Option<f64>) {
        let Some(done) = self.done.get_mut(i) else { return };
        *done = true;
        let cost = self.costs[i];
        if let (Some(seconds), true) = (seconds, cost.images > 0.0) {
            let entry = self.measured.entry(cost.kind).or_insert((0.0, 0.0));
            entry.0 += seconds;
            entry.1 += cost.images;
        }
    }

    /// Seconds per image of `kind`: measured on its finished runs, else the measured kinds'
    /// rate scaled by the priors; none before any run has finished.
    fn rate(&self, kind: Kind) -> Option<f64> {
        if let Some(&(seconds, images)) = self.measured.get(&kind) {
            return Some(seconds / images);
        }
        let (seconds, equivalent) = self
            .measured
            .iter()
            .fold((0.0, 0.0), |(s, e), (k, (sec, img))| (s + sec, e + img * k.prior()));
        (equivalent > 0.0).then(|| seconds / equivalent * kind.prior())
    }

    /// Seconds left for the runs not yet over (a run under way counts whole), shared among the
    /// workers; none before any run has finished.
    pub fn remaining(&self) -> Option<f64> {
        let mut total = 0.0;
        for (cost, _) in self.costs.iter().zip(&self.done).filter(|(_, done)| !**done) {
            total += cost.images * self.rate(cost.kind)?;
        }
        Some(total / self.workers as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The case: fast end-to-end runs, then slow Meta Sampler runs. An average over the
    /// runs so far would promise 3 x 10 s; the costs price the Meta runs by their own work.
    #[test]
    fn slow_runs_after_fast_ones_are_priced_by_their_own_work() {
        let e2e = Cost { kind: Kind::EndToEnd, images: 1000.0 };
        let meta = Cost { kind: Kind::Meta, images: 5000.0 };
        let mut eta = Eta::new(vec![e2e, e2e, meta, meta, meta], 1);
        assert_eq!(eta.remaining(), None, "nothing measured yet");
        eta.finish_after(0, Some(10.0));
        eta.finish_after(1, Some(10.0));
        // 0.01 s per image, Meta's prior 1: 3 x 5000 x 0.01.
        assert!((eta.remaining().unwrap() - 150.0).abs() < 1e-9);
        // The first Meta run took 200 s: 0.04 s per image for the two left.
        eta.finish_after(2, Some(200.0));
        assert!((eta.remaining().unwrap() - 400.0).abs() < 1e-9);
        // A failed or skipped run is over but measures nothing.
        eta.finish_after(3, None);
        assert!((eta.remaining().unwrap() - 200.0).abs() < 1e-9);
    }

    #[test]
    fn workers_share_the_work_and_post_hoc_runs_cost_nothing() {
        let e2e = Cost { kind: Kind::EndToEnd, images: 1000.0 };
        let post_hoc = Cost { kind: Kind::Stage2 { backbone: false }, images: 0.0 };
        let cached = Cost { kind: Kind::Stage2 { backbone: false }, images: 2000.0 };
        let mut eta = Eta::new(vec![e2e, e2e, e2e, post_hoc, cached], 2);
        eta.finish_after(0, Some(4.0));
        // Two end-to-end runs at 0.004 s per image and a cached stage 2 at 0.05 of it, over 2.
        let work = 2.0 * 1000.0 * 0.004 + 2000.0 * 0.004 * 0.05;
        let expected = work / 2.0;
        assert!((eta.remaining().unwrap() - expected).abs() < 1e-9);
    }
}
