//! The official code's epoch arithmetic (`stepping = "epoch"`) against torch's own schedulers,
//! stepped as the official loop steps them (`tests/fixtures/torch_epoch_schedule.py`, run with the
//! `.venv-ref` Python), at the CIFAR-10-LT IF 100 counts: stage 1 (13,000 iterations, 800 warm-up,
//! peak 0.1 from 0.05) and stage 2 (2,000 iterations, no warm-up), DT and BALMS.

use std::process::Command;

use balms::matrix::Length;
use balms::sampler::{MetaSpec, SamplerSpec};
use balms::train::schedule::Timeline;
use balms::vocab::Stepping;

use crate::util::{root, torch_python};

/// CIFAR-10-LT IF 100's class counts (`IMBALANCECIFAR10`: `floor(5000 * 100^(-j / 9))`).
const COUNTS: [usize; 10] = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];

fn torch_rates(python: &std::path::Path, epochs: u64, warmup: u64, peak: f64) -> Vec<f64> {
    let out = Command::new(python)
        .arg(root().join("tests/fixtures/torch_epoch_schedule.py"))
        .args([epochs.to_string(), warmup.to_string(), peak.to_string(), "0.5".to_string()])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a JSON list of rates")
}

#[test]
fn epoch_stepping_gives_torchs_rates_epoch_by_epoch() {
    let Some(python) = torch_python() else { return };
    let meta = SamplerSpec::Meta(MetaSpec::default());
    let cases = [
        (&SamplerSpec::Instance, 13_000, 800, (520, 24, 32)),
        (&SamplerSpec::Instance, 2_000, 0, (80, 24, 0)),
        (&meta, 2_000, 0, (84, 24, 0)),
    ];
    for (sampler, iterations, warmup, expected) in cases {
        let timeline = Timeline::new(
            Stepping::Epoch,
            &COUNTS,
            512,
            sampler,
            Length::Iterations(iterations),
            Length::Iterations(warmup),
        )
        .expect("a timeline");
        let Timeline::PerEpoch { epochs, steps, warmup: warmup_epochs, .. } = timeline else {
            panic!("per epoch")
        };
        assert_eq!((epochs, steps, warmup_epochs), expected);
        let torch = torch_rates(&python, epochs, warmup_epochs, 0.1);
        assert_eq!(torch.len() as u64, epochs);
        for t in 0..timeline.iterations() {
            let ours = timeline.learning_rate(0.1, 0.5, t);
            let theirs = torch[usize::try_from(t / steps).expect("fits")];
            assert!(
                (ours - theirs).abs() <= 1e-12,
                "{iterations} iterations, iteration {t} (epoch {}): balms {ours}, torch {theirs}",
                t / steps + 1
            );
        }
        assert!(torch[torch.len() - 1].abs() < 1e-15, "the last epoch runs at 0");
    }
}
