//! Model selection during training: keeps a copy of the best checkpoint under the run's
//! [`Selection`] rule.

use tch::{nn, Tensor};

use super::evaluate;
use crate::data::inputs::Rows;
use crate::data::RunData;
use crate::vocab::Selection;

/// Validation and test inputs (or frozen features) with their labels, for model selection.
pub(super) struct Splits<'a> {
    pub(super) val: (&'a dyn Rows, &'a Tensor),
    pub(super) test: (&'a dyn Rows, &'a Tensor),
}

/// A kept checkpoint: its score, the iteration it was taken at, and copies of the variables.
struct Kept {
    score: f64,
    iteration: u64,
    variables: Vec<(String, Tensor)>,
}

/// The best checkpoint seen so far.
pub(super) struct Best {
    selection: Selection,
    best: Option<Kept>,
}

impl Best {
    pub(super) fn new(selection: Selection) -> Best {
        Best { selection, best: None }
    }

    /// Scores the current model after `iteration` iterations on the rule's split of the run's
    /// data and keeps a copy of `vs` if it beats every earlier one.
    pub(super) fn offer(
        &mut self,
        vs: &nn::VarStore,
        iteration: u64,
        data: &RunData,
        logits: impl Fn(&Tensor) -> Tensor,
    ) {
        let splits = Splits { val: (&data.val_x, &data.val_y), test: (&data.test_x, &data.test_y) };
        self.offer_split(vs, iteration, &splits, logits);
    }

    fn keep_if_better(&mut self, vs: &nn::VarStore, iteration: u64, score: f64) {
        if self.best.as_ref().is_none_or(|kept| score > kept.score) {
            let _guard = tch::no_grad_guard();
            let mut copy: Vec<(String, Tensor)> =
                vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect();
            copy.sort_by(|a, b| a.0.cmp(&b.0));
            self.best = Some(Kept { score, iteration, variables: copy });
        }
    }

    /// Scores a model on the rule's split of `splits` (inputs or frozen features with labels).
    pub(super) fn offer_split(
        &mut self,
        vs: &nn::VarStore,
        iteration: u64,
        frozen_splits: &Splits<'_>,
        logits: impl Fn(&Tensor) -> Tensor,
    ) {
        let score = match self.selection {
            Selection::Last => return,
            Selection::BestVal => evaluate::top1(logits, frozen_splits.val.0, frozen_splits.val.1),
            Selection::BestTest => {
                evaluate::top1(logits, frozen_splits.test.0, frozen_splits.test.1)
            }
        };
        self.keep_if_better(vs, iteration, score);
    }

    /// Puts the selected weights back into `vs`; returns the iteration they were taken at
    /// (`last` when the rule is [`Selection::Last`]).
    pub(super) fn restore(self, vs: &nn::VarStore, last: u64) -> u64 {
        let Some(Kept { iteration, variables: copy, .. }) = self.best else { return last };
        let _guard = tch::no_grad_guard();
        let mut variables = vs.variables();
        for (name, saved) in copy {
            variables.get_mut(&name).expect("same store").copy_(&saved);
        }
        iteration
    }
}
