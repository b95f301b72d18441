//! The settings where a plan differs from the official protocol it declares it follows
//! (`follows`), for `balms plan`, every report and the README's faithfulness section.
//!
//! The rows about settings a matrix can change (the epoch arithmetic, augmentation, optimiser,
//! stage 2's batch norm, model selection, a scaled protocol) are computed from the plan, so a
//! matrix that adopts the official setting drops them; their texts give CIFAR-10-LT IF 100's
//! numbers as the example, and what balms cannot match (unseeded global generators) stays on
//! every list. Facts:
//! ../shared/reference/paper-facts.md sections 3.2, 4.1, 4.4 and 4.5.

use std::fmt::Write as _;

use super::{Method, Plan, Scheme};
use crate::data::augment::AugmentSpec;
use crate::data::autoaugment::Policy;
use crate::vocab::{Features, Protocol, Selection, Stepping};

/// One setting where balms differs from the official code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The setting, in the field's words.
    pub setting: &'static str,
    /// What balms does in this plan.
    pub balms: String,
    /// What the official code does.
    pub official: String,
}

fn difference(setting: &'static str, balms: &str, official: &str) -> Difference {
    Difference { setting, balms: balms.to_string(), official: official.to_string() }
}

/// Method names, comma-separated, or "every method" when they are all of the plan's.
fn names(plan: &Plan, methods: &[&Method]) -> String {
    if methods.len() == plan.methods.len() {
        return "every method".to_string();
    }
    methods.iter().map(|m| format!("`{}`", m.name)).collect::<Vec<_>>().join(", ")
}

/// The official CIFAR training transform.
const OFFICIAL_AUGMENT: AugmentSpec =
    AugmentSpec::Cifar { padding: 4, policy: Policy::AutoaugmentCifar10, cutout: 16 };

/// The settings where `plan` differs from `protocol`, in a fixed order.
#[must_use]
pub fn differences(plan: &Plan, protocol: Protocol) -> Vec<Difference> {
    match protocol {
        Protocol::OfficialCifar => official_cifar(plan),
    }
}

fn official_cifar(plan: &Plan) -> Vec<Difference> {
    let end_to_end: Vec<(&Method, &super::Settings)> = plan
        .methods
        .iter()
        .filter_map(|m| match &m.scheme {
            Scheme::EndToEnd(s) => Some((m, s)),
            Scheme::Decoupled(_) => None,
        })
        .collect();
    let trained_stage2: Vec<(&Method, &super::Stage2)> = plan
        .methods
        .iter()
        .filter_map(|m| match &m.scheme {
            Scheme::Decoupled(s) if !s.classifier.is_post_hoc() => Some((m, s)),
            Scheme::Decoupled(_) | Scheme::EndToEnd(_) => None,
        })
        .collect();
    let mut out = epoch_rows(plan, &end_to_end, &trained_stage2);
    let not_test: Vec<&Method> = plan
        .methods
        .iter()
        .filter(|m| {
            let selection = match &m.scheme {
                Scheme::EndToEnd(s) => s.selection,
                Scheme::Decoupled(s) => s.selection,
            };
            selection != Selection::BestTest
        })
        .collect();
    if !not_test.is_empty() {
        out.push(Difference {
            setting: "model selection",
            balms: format!(
                "reports the checkpoint its `selection` names, never chosen on test by default ({})",
                names(plan, &not_test)
            ),
            official: "reports the best epoch on the CIFAR test set (its 'val' phase loads the test set), and stage 2 starts from that stage-1 epoch (`selection = \"best-test\"` offers the rule, labelled as chosen on test)".to_string(),
        });
    }
    out.push(difference(
        "random draws",
        "draws every stream from the matrix's seeds: one long-tailed subset per column and seed, shared by every method and by the Meta Sampler's meta set",
        "seeds nothing: Python, NumPy and torch generators unseeded, so each run draws its own subset, and the Meta Sampler's meta set (a second `IMBALANCECIFAR` instance) its own subset of the tail classes",
    ));
    let (augment, labels): (Vec<&Method>, std::collections::BTreeSet<String>) = end_to_end
        .iter()
        .filter(|(_, s)| s.augment != OFFICIAL_AUGMENT)
        .map(|(m, s)| (*m, s.augment.label()))
        .unzip();
    if !augment.is_empty() {
        let labels: Vec<String> = labels.into_iter().collect();
        out.push(Difference {
            setting: "augmentation",
            balms: format!("{} for {}", labels.join(", "), names(plan, &augment)),
            official: "black-padded crop (4), flip, the AutoAugment CIFAR-10 policy, Cutout 16 (`augment = { cifar = {} }`)".to_string(),
        });
    }
    let nesterov: Vec<&Method> =
        end_to_end.iter().filter(|(_, s)| s.optimizer.nesterov).map(|(m, _)| *m).collect();
    if !nesterov.is_empty() {
        out.push(Difference {
            setting: "optimiser",
            balms: format!("Nesterov momentum, the paper's wording ({})", names(plan, &nesterov)),
            official: "plain momentum 0.9 (no `nesterov` flag)".to_string(),
        });
    }
    out.extend(stage2_rows(plan, &trained_stage2));
    out
}

/// The rows about the official code's epochs (`stepping`): its learning-rate stepping, its
/// training length and its skipped last batch, for the methods that step per iteration.
fn epoch_rows(
    plan: &Plan,
    end_to_end: &[(&Method, &super::Settings)],
    trained_stage2: &[(&Method, &super::Stage2)],
) -> Vec<Difference> {
    let per_iteration: Vec<&Method> = end_to_end
        .iter()
        .filter(|(_, s)| s.schedule.stepping == Stepping::Iteration)
        .map(|(m, _)| *m)
        .chain(
            trained_stage2
                .iter()
                .filter(|(_, s)| s.stepping == Stepping::Iteration)
                .map(|(m, _)| *m),
        )
        .collect();
    let mut out = Vec::new();
    let official_length = "runs ceil(iterations / loader length) epochs of floor(N / batch) steps: 12,480 stage-1 iterations for 13,000 and 1,920 (DT) or 2,016 (BALMS) for 2,000 at CIFAR-10-LT IF 100 (`stepping = \"epoch\"`); with class-aware sampling, which no official CIFAR config uses, its loader of C x max n_j images would give 3,192 and 504";
    if !per_iteration.is_empty() {
        let who = names(plan, &per_iteration);
        out.push(Difference {
            setting: "learning-rate schedule",
            balms: format!("steps every iteration ({who}): linear warm-up over its warm-up iterations, 800 in the CIFAR configs, then cosine to 0; stage 2 cosine from the start"),
            official: "steps once per epoch: warm-up epochs = ceil(800 / loader length), 32 at CIFAR-10-LT IF 100, and the last epoch runs at lr 0 (`run_networks.py`, `CosineAnnealingLRWarmup`)".to_string(),
        });
        out.push(Difference {
            setting: "training length",
            balms: match plan.scale {
                Some(factor) => format!("runs exactly its iterations ({who}), here the matrix's times {factor}, a scaled protocol"),
                None => format!("runs exactly the matrix's iterations ({who})"),
            },
            official: official_length.to_string(),
        });
        out.push(Difference {
            setting: "last batch of an epoch",
            balms: format!("trains on it ({who}): instance sampling draws a fresh permutation per epoch, its last batch smaller"),
            official: "skips it: each epoch stops after floor(N / batch) full batches".to_string(),
        });
    } else if let Some(factor) = plan.scale {
        out.push(Difference {
            setting: "training length",
            balms: format!("runs the official epochs of the matrix's iterations times {factor} (a scaled protocol)"),
            official: official_length.to_string(),
        });
    }
    out
}

/// The stage-2 rows: batch norm's mode, and its updates with the Meta Sampler.
fn stage2_rows(plan: &Plan, trained_stage2: &[(&Method, &super::Stage2)]) -> Vec<Difference> {
    let mut out = Vec::new();
    let bn: Vec<&Method> = trained_stage2
        .iter()
        .filter(|(_, s)| s.features != Features::AugmentedTrainBn)
        .map(|(m, _)| *m)
        .collect();
    let meta_bn: Vec<&Method> = trained_stage2
        .iter()
        .filter(|(_, s)| {
            s.features == Features::AugmentedTrainBn
                && s.sampler.meta().is_some()
                && !s.sampler.is_reweighter()
                && !s.double_forward
        })
        .map(|(m, _)| *m)
        .collect();
    if !meta_bn.is_empty() {
        out.push(Difference {
            setting: "batch-norm updates with the Meta Sampler",
            balms: format!("passes each training batch through the backbone once, moving the running statistics once per batch and once per meta batch ({})", names(plan, &meta_bn)),
            official: "passes it twice (`meta_forward`, then `batch_forward`; the same features, as training mode normalises with the batch's statistics), so the running statistics move twice per batch (`stage2.double-forward = true`)".to_string(),
        });
    }
    if !bn.is_empty() {
        out.push(Difference {
            setting: "stage-2 backbone",
            balms: format!("evaluation-mode batch norm ({})", names(plan, &bn)),
            official: "training-mode batch norm on augmented batches: batch statistics, running statistics moving (`features = \"augmented-train-bn\"`)".to_string(),
        });
    }
    out
}

/// The differences as a Markdown table, for reports and the README.
#[must_use]
pub fn markdown(differences: &[Difference]) -> String {
    let mut out = String::from("| setting | balms | the official code |\n|---|---|---|\n");
    for d in differences {
        let _ = writeln!(out, "| {} | {} | {} |", d.setting, d.balms, d.official);
    }
    out
}
