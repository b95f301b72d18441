//! Test-set metrics: top-1, per-class accuracy, many/medium/few, and the marginal likelihood p(y).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::data::inputs::Rows;
use crate::data::longtail::Shot;

/// Test-set metrics of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Evaluation {
    /// Top-1 accuracy over the (balanced) test set.
    pub top1: f64,
    /// Mean per-class accuracy of classes with more than 100 training images.
    pub many: Option<f64>,
    /// Same for 20 to 100 images.
    pub medium: Option<f64>,
    /// Same for fewer than 20.
    pub few: Option<f64>,
    /// Accuracy of each class.
    pub per_class_accuracy: Vec<f64>,
    /// Mean softmax probability of each class over the test set.
    pub marginal_likelihood: Vec<f64>,
    /// Number of test images evaluated (the whole test split).
    pub test_size: u64,
}

/// Batch size of evaluation forwards.
pub const EVAL_BATCH: i64 = 1000;

/// Evaluates `logits_of` (raw logits: Balanced Softmax is not applied at test time) on a test set.
///
/// `p(y)` is the mean softmax probability of each class over the test set (the paper's Figures
/// 1 and 2, normalised so that it sums to 1).
#[must_use]
pub fn evaluate(
    logits_of: impl Fn(&Tensor) -> Tensor,
    x: &dyn Rows,
    y: &Tensor,
    counts: &[usize],
) -> Evaluation {
    let _guard = tch::no_grad_guard();
    let classes = i64::try_from(counts.len()).expect("fits");
    let mut correct = Tensor::zeros([classes], (Kind::Double, tch::Device::Cpu));
    let mut total = Tensor::zeros([classes], (Kind::Double, tch::Device::Cpu));
    let mut prob_sum = Tensor::zeros([classes], (Kind::Double, tch::Device::Cpu));
    x.each_chunk(EVAL_BATCH, &mut |start, chunk| {
        let logits = logits_of(&chunk).to_kind(Kind::Double);
        let targets = y.narrow(0, start, chunk.size()[0]);
        let hit = logits.argmax(1, false).eq_tensor(&targets).to_kind(Kind::Double);
        correct += Tensor::zeros([classes], (Kind::Double, logits.device()))
            .index_add(0, &targets, &hit)
            .to_device(tch::Device::Cpu);
        total += targets
            .bincount::<Tensor>(None, classes)
            .to_kind(Kind::Double)
            .to_device(tch::Device::Cpu);
        prob_sum += logits
            .softmax(1, Kind::Double)
            .sum_dim_intlist(0, false, Kind::Double)
            .to_device(tch::Device::Cpu);
    });
    summarise(
        &Vec::<f64>::try_from(&correct).expect("f64"),
        &Vec::<f64>::try_from(&total).expect("f64"),
        &Vec::<f64>::try_from(&prob_sum).expect("f64"),
        counts,
    )
}

/// Top-1 accuracy of `logits_of` on `x`, `y` (for model selection and validation).
#[must_use]
pub fn top1(logits_of: impl Fn(&Tensor) -> Tensor, x: &dyn Rows, y: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let n = x.count();
    let mut correct = 0i64;
    x.each_chunk(EVAL_BATCH, &mut |start, chunk| {
        let predicted = logits_of(&chunk).argmax(1, false);
        let targets = y.narrow(0, start, chunk.size()[0]);
        correct += predicted.eq_tensor(&targets).sum(Kind::Int64).int64_value(&[]);
    });
    if n == 0 {
        f64::NAN
    } else {
        correct as f64 / n as f64
    }
}

/// Top-1 accuracy of predictions made elsewhere (an external method's validation rows):
/// `predicted[i]` against `labels[i]`; NaN for no rows, as [`top1`] gives.
#[must_use]
pub fn top1_of_predictions(predicted: &[i64], labels: &[i64]) -> f64 {
    let correct = predicted.iter().zip(labels).filter(|(p, y)| p == y).count();
    if labels.is_empty() {
        f64::NAN
    } else {
        correct as f64 / labels.len() as f64
    }
}

/// The metrics of test predictions scored elsewhere (an external method): `predicted[i]` is the
/// class predicted for test row `i`, whose label is `labels[i]`; p(y) is taken as reported.
#[must_use]
pub fn from_predictions(
    predicted: &[i64],
    labels: &[i64],
    marginal_likelihood: Vec<f64>,
    counts: &[usize],
) -> Evaluation {
    let classes = counts.len();
    let (mut correct, mut total) = (vec![0.0; classes], vec![0.0; classes]);
    for (&p, &y) in predicted.iter().zip(labels) {
        let class = usize::try_from(y).expect("a class");
        total[class] += 1.0;
        if p == y {
            correct[class] += 1.0;
        }
    }
    let mut evaluation = summarise(&correct, &total, &vec![0.0; classes], counts);
    evaluation.marginal_likelihood = marginal_likelihood;
    evaluation
}

fn summarise(correct: &[f64], total: &[f64], prob_sum: &[f64], counts: &[usize]) -> Evaluation {
    let n: f64 = total.iter().sum();
    let per_class: Vec<f64> =
        correct.iter().zip(total).map(|(c, t)| if *t > 0.0 { c / t } else { f64::NAN }).collect();
    let group = |shot: Shot| {
        let members: Vec<f64> = per_class
            .iter()
            .zip(counts)
            .filter(|(_, &c)| Shot::of(c) == shot)
            .map(|(a, _)| *a)
            .collect();
        (!members.is_empty()).then(|| members.iter().sum::<f64>() / members.len() as f64)
    };
    Evaluation {
        top1: correct.iter().sum::<f64>() / n,
        many: group(Shot::Many),
        medium: group(Shot::Medium),
        few: group(Shot::Few),
        per_class_accuracy: per_class,
        marginal_likelihood: prob_sum.iter().map(|p| p / n).collect(),
        test_size: {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "n counts test images: a whole, non-negative number"
            )]
            let size = n as u64;
            size
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_give_the_metrics_their_logits_give() {
        // Logits whose argmax is each row's prediction: the two paths agree.
        let labels = [0i64, 0, 1, 1, 2, 2, 2];
        let predicted = [0i64, 1, 1, 1, 0, 2, 1];
        let logits = Tensor::zeros([7, 3], (Kind::Float, tch::Device::Cpu));
        for (row, &p) in predicted.iter().enumerate() {
            let _ = logits.get(i64::try_from(row).unwrap()).get(p).fill_(5.0);
        }
        let counts = [150, 50, 5];
        let y = Tensor::from_slice(&labels);
        let direct = evaluate(Tensor::shallow_clone, &logits, &y, &counts);
        let p = direct.marginal_likelihood.clone();
        let via = from_predictions(&predicted, &labels, p, &counts);
        assert_eq!(via, direct);
        assert!((via.top1 - 4.0 / 7.0).abs() < 1e-15 && via.few == Some(1.0 / 3.0));
        let rows = Tensor::arange(7, (Kind::Int64, tch::Device::Cpu));
        let direct = top1(|idx| logits.index_select(0, idx), &rows, &y);
        assert_eq!(top1_of_predictions(&predicted, &labels).to_bits(), direct.to_bits());
        assert!(top1_of_predictions(&[], &[]).is_nan());
    }

    #[test]
    fn metrics_of_a_known_prediction() {
        // 4 test images of 3 classes; logits favour class 0 everywhere except image 3.
        let logits =
            Tensor::from_slice(&[5.0f32, 0., 0., 5., 0., 0., 0., 5., 0., 5., 0., 0.]).view([4, 3]);
        let y = Tensor::from_slice(&[0i64, 1, 1, 2]);
        let x = Tensor::arange(4, (Kind::Int64, tch::Device::Cpu));
        let eval = evaluate(|idx| logits.index_select(0, idx), &x, &y, &[500, 50, 5]);
        assert!((eval.top1 - 0.5).abs() < 1e-12);
        assert_eq!(eval.per_class_accuracy, [1.0, 0.5, 0.0]);
        assert_eq!((eval.many, eval.medium, eval.few), (Some(1.0), Some(0.5), Some(0.0)));
        let total: f64 = eval.marginal_likelihood.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(eval.marginal_likelihood[0] > 0.7);
    }
}
