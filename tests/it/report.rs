//! The reporter on hand-made records: tables are snapshots, statistics are checked by hand.

use balms::config::MatrixFile;
use balms::matrix::Plan;
use balms::store::{self, Evaluation, Metrics, Store};

const MATRIX: &str = r#"name = "fixture"
description = "Hand-made records for the reporter's snapshot."
seeds = [1, 2, 3]
datasets = [{ digits-lt = { imbalance = [10, 5] } }]
[[methods]]
name = "softmax"
[[methods]]
name = "balanced-softmax"
loss = "balanced-softmax"
"#;

fn metrics(plan: &Plan, cell: &balms::matrix::Cell, seed: u64, top1: f64) -> Metrics {
    let counts = cell.column.dataset.class_counts(cell.column.imbalance);
    let few = counts.iter().any(|&n| n < 20).then_some(top1 - 0.2);
    Metrics {
        schema: 2,
        run: cell.id(),
        seed,
        config_sha256: plan.config_hash(cell, balms::seed::Seed(seed)),
        selection: "last".into(),
        iterations: 100,
        selected_iteration: 100,
        final_train_loss: Some(0.1),
        validation_top1: top1,
        tau: None,
        meta_rates: None,
        meta_rates_variance: None,
        class_counts: counts,
        train_indices_sha256: format!("{}-{seed}", cell.column.id()),
        evaluation: Evaluation {
            top1,
            many: Some(top1 + 0.05),
            medium: Some(top1),
            few,
            per_class_accuracy: vec![top1; 10],
            marginal_likelihood: vec![0.1; 10],
            test_size: 500,
        },
    }
}

#[test]
fn table_snapshot_from_fixture_records() {
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Plan::from_file(MatrixFile::parse(MATRIX, "f.toml".as_ref()).unwrap(), "f.toml".as_ref())
            .unwrap();
    let store = Store::new(dir.path());
    for (i, cell) in plan.cells().iter().enumerate() {
        // The last cell has one seed missing: the table must say n=2 of 3.
        let seeds: &[u64] = if i == 3 { &[1, 2] } else { &[1, 2, 3] };
        for &seed in seeds {
            let run_dir = store.run_dir(&plan.name, cell, seed);
            #[allow(clippy::cast_precision_loss)]
            let top1 = 0.80 + 0.01 * i as f64 + 0.002 * seed as f64;
            store::write_json(&run_dir.join("metrics.json"), &metrics(&plan, cell, seed, top1))
                .unwrap();
            let provenance = serde_json::json!({"provenance": {"git-revision": "0123456789abcdef", "git-dirty": false, "balms-version": "0.1.0", "libtorch": "2.11.0", "device": "cpu", "threads": 2, "data-source": "embedded"}});
            store::write_json(&run_dir.join("config.json"), &provenance).unwrap();
        }
    }
    let report = balms::report::collect(&plan, &store).unwrap();
    assert!(report.subsets_agree);
    // softmax at IF 10: 0.802, 0.804, 0.806 -> mean 80.4, s.e. 0.1155, t(2) = 4.3027.
    let first = &report.cells[0];
    assert_eq!(first.runs.len(), 3);
    insta::assert_snapshot!(balms::report::render_markdown(&report));
}
