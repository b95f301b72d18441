//! The reporter on hand-made records: tables are snapshots, statistics are checked by hand.

use balms::config::MatrixFile;
use balms::matrix::Plan;
use balms::store::{self, Metrics, Store};
use balms::train::evaluate::Evaluation;

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
    let counts = cell.column.dataset.class_counts(cell.column.imbalance).expect("a profile");
    let few = counts.iter().any(|&n| n < 20).then_some(top1 - 0.2);
    let classes = counts.clone();
    Metrics {
        schema: 2,
        run: cell.id(),
        seed,
        config_sha256: plan.config_hash(cell, balms::seed::Seed(seed)),
        selection: "last".into(),
        iterations: 100,
        selected_iteration: 100,
        final_train_loss: Some(0.1),
        validation_top1: Some(top1),
        tau: None,
        meta_rates: None,
        meta_rates_variance: None,
        class_counts: counts,
        train_indices_sha256: format!("{}-{seed}", cell.column.id()),
        external: None,
        named_metrics: std::collections::BTreeMap::new(),
        evaluation: Some(Evaluation {
            top1,
            many: Some(top1 + 0.05),
            medium: Some(top1),
            few,
            // Consistent with the groups: many +0.05, medium as is, few -0.2.
            per_class_accuracy: classes
                .iter()
                .map(|&n| {
                    if n > 100 {
                        top1 + 0.05
                    } else if n < 20 {
                        top1 - 0.2
                    } else {
                        top1
                    }
                })
                .collect(),
            // p(y) moves with the seed, so figures have a band: 0.1 +- 0.001 s, alternating.
            marginal_likelihood: (0..10)
                .map(|c| 0.1 + 0.001 * seed as f64 * if c % 2 == 0 { 1.0 } else { -1.0 })
                .collect(),
            // The dataset's own test split (CIFAR-10: 10,000; digits: 500).
            test_size: cell
                .column
                .dataset
                .descriptor()
                .test_images
                .counts(10)
                .map_or(500, |c| c.iter().sum()),
        }),
    }
}

/// Writes a finished run's `metrics.json` (top-1 as a fraction) and a `config.json` with
/// provenance.
fn write_run(store: &Store, plan: &Plan, cell: &balms::matrix::Cell, seed: u64, top1: f64) {
    let run_dir = store.run_dir(&plan.name, cell, seed);
    store::write_json(&run_dir.join("metrics.json"), &metrics(plan, cell, seed, top1)).unwrap();
    write_config(&run_dir);
}

/// Writes a failed run's `failed.json`.
fn write_failure(store: &Store, plan: &Plan, cell: &balms::matrix::Cell, seed: u64, error: &str) {
    let failure = store::Failure {
        schema: store::SCHEMA,
        run: cell.id(),
        seed,
        config_sha256: plan.config_hash(cell, balms::seed::Seed(seed)),
        error: error.into(),
    };
    let dir = store.run_dir(&plan.name, cell, seed);
    store::write_json(&dir.join("failed.json"), &failure).unwrap();
}

/// A `config.json` with provenance and the validation split (20 per class, none of them
/// training images).
fn write_config(run_dir: &std::path::Path) {
    let provenance = serde_json::json!({"provenance": {"git-revision": "0123456789abcdef", "git-dirty": false, "balms-version": "0.1.0", "libtorch": "2.11.0", "device": "cpu", "threads": 2, "data-source": "embedded"}, "validation": {"per-class": 20, "from-training": 0, "indices-sha256": "v"}});
    store::write_json(&run_dir.join("config.json"), &provenance).unwrap();
}

#[test]
fn table_snapshot_from_fixture_records() {
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Plan::from_file(MatrixFile::parse(MATRIX, "f.toml".as_ref()).unwrap(), "f.toml".as_ref())
            .unwrap();
    let store = Store::new(dir.path());
    for (i, cell) in plan.cells().iter().enumerate() {
        // The last cell's third seed failed: the table must say n=2 of 3, 1 failed, and why.
        let seeds: &[u64] = if i == 3 { &[1, 2] } else { &[1, 2, 3] };
        for &seed in seeds {
            let top1 = 0.80 + 0.01 * i as f64 + 0.002 * seed as f64;
            write_run(&store, &plan, cell, seed, top1);
        }
        if i == 3 {
            let error = "training diverged: loss inf at epoch 7, iteration 90";
            write_failure(&store, &plan, cell, 3, error);
        }
    }
    let report = balms::report::collect(&plan, &store).unwrap();
    assert!(report.subsets_agree);
    // softmax at IF 10: 0.802, 0.804, 0.806 -> mean 80.4, s.e. 0.1155, t(2) = 4.3027.
    let first = &report.cells[0];
    assert_eq!(first.runs.len(), 3);
    insta::assert_snapshot!(balms::report::render_markdown(&report));
}

#[test]
fn claims_are_paired_over_shared_seeds_and_judged_by_their_interval() {
    let text = r#"name = "claims"
seeds = [1, 2, 3]
datasets = [{ digits-lt = { imbalance = [10, 5] } }]
[[methods]]
name = "a"
[[methods]]
name = "b"
loss = "balanced-softmax"
[[methods]]
name = "c"
loss = "cbw"
[[claims]]
claim = "b beats a"
better = "b"
than = "a"
[[claims]]
claim = "a beats b"
better = "a"
than = "b"
imbalance = [10]
[[claims]]
claim = "c beats a"
better = "c"
than = "a"
[[claims]]
claim = "b's gain grows"
better = "b"
than = "a"
grows-with-imbalance = true
"#;
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Plan::from_file(MatrixFile::parse(text, "c.toml".as_ref()).unwrap(), "c.toml".as_ref())
            .unwrap();
    let store = Store::new(dir.path());
    // top-1 (%) per (method, IF, seed); c at IF 5 has one run only.
    let top1 = |method: &str, imbalance: f64, seed: u64| -> Option<f64> {
        let s = seed as f64;
        match (method, imbalance.to_bits() == 10f64.to_bits()) {
            ("a", _) => Some(80.0 + s),
            ("b", true) => Some(80.0 + s + 1.5 + 0.5 * s), // differences 2, 2.5, 3
            ("b", false) => Some(80.0 + s + 1.0),          // differences 1, 1, 1
            ("c", true) => Some(80.0 + s + s),             // differences 1, 2, 3
            ("c", false) => (seed == 1).then_some(90.0),
            _ => None,
        }
    };
    for cell in plan.cells() {
        for seed in 1..=3 {
            let Some(value) = top1(&cell.method.name, cell.column.imbalance, seed) else {
                continue;
            };
            write_run(&store, &plan, &cell, seed, value / 100.0);
        }
    }
    let report = balms::report::collect(&plan, &store).unwrap();
    let found: Vec<(String, String, usize)> =
        report.claims.iter().map(|r| (r.claim.claim.clone(), r.scope.clone(), r.pairs)).collect();
    let verdict = |i: usize| format!("{:?}", report.claims[i].verdict);
    assert_eq!(found.len(), 6, "{found:?}");
    // b - a at IF 10: 2, 2.5, 3 points, and 2.5 points on each of the 10 classes (50 test
    // images each). Seeds: s^2 / n = 0.25 / 3. Test set: per class the Agresti-Coull variance
    // of 0.025 on 50 images, (1/10)^2 each: 1.0278 points^2 in all. Satterthwaite's dof 357,
    // t = 1.9667: [0.4255, 4.5745] (mpmath, by the formulas of the caption).
    let e = report.claims[0].estimate.unwrap();
    assert!((e.mean - 2.5).abs() < 1e-9 && (e.std_err - 1.054_841_2).abs() < 1e-6, "{e:?}");
    assert!((e.lower - 0.425_507_77).abs() < 1e-6 && (e.upper - 4.574_492_2).abs() < 1e-6);
    assert_eq!((verdict(0), found[0].1.as_str()), ("Supported".to_string(), "digits-lt IF 10"));
    // At IF 5 every difference is 1: the seeds tie, and a tie carries no verdict.
    assert_eq!(verdict(1), "Withheld(SeedsTie)");
    // The reverse claim, restricted to IF 10.
    assert_eq!((verdict(2), found[2].1.as_str()), ("Contradicted".to_string(), "digits-lt IF 10"));
    // c - a at IF 10: 1, 2, 3; at IF 5 one shared seed only.
    assert_eq!(verdict(3), "Inconclusive");
    assert_eq!((verdict(4), found[4].2), ("NotRun".to_string(), 1));
    // Growth of b's gain from IF 5 to IF 10: 1, 1.5, 2, but each column's gain carries its own
    // test-set noise (about 1 point of standard error each): inconclusive.
    assert_eq!(
        (verdict(5), found[5].1.as_str()),
        ("Inconclusive".to_string(), "digits-lt IF 10 vs IF 5")
    );
    let markdown = balms::report::render_markdown(&report);
    insta::assert_snapshot!("claims_markdown", balms::report::claims::render(&report.claims));
    // Three seeds: no bootstrap interval (it needs 5).
    assert!(markdown.contains("| a beats b (`a` vs `b`) |  | digits-lt IF 10 | -2.50 | [-4.57, -0.43] | - | 0.06 | 3 | **contradicted** |"), "{markdown}");
    assert!(report.claims.iter().all(|c| c.bootstrap.is_none()));
    // b's runs at IF 10 are 83, 84.5, 86 and a's 81, 82, 83: b wins 8 of the 9 pairs and ties
    // one (83 against 83): (8 + 0.5) / 9.
    assert!((report.claims[0].improvement.unwrap() - 8.5 / 9.0).abs() < 1e-12);
    assert_eq!(report.claims[5].improvement, None);
}

/// The error of a one-method digits matrix with `extra` appended.
fn plan_error(extra: &str) -> String {
    let text = format!(
        "name = \"x\"\nseeds = [1, 2]\ndatasets = [{{ digits-lt = {{ imbalance = [10] }} }}]\n[[methods]]\nname = \"a\"\n{extra}"
    );
    Plan::from_file(MatrixFile::parse(&text, "x.toml".as_ref()).unwrap(), "x.toml".as_ref())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_claim_naming_an_unknown_method_or_factor_is_refused() {
    let parse = plan_error;
    let unknown = parse("[[claims]]\nclaim = \"z\"\nbetter = \"a\"\nthan = \"bee\"\n");
    assert!(unknown.contains("claims[0]: no method `bee` (methods: a)"), "{unknown}");
    let factor =
        parse("[[claims]]\nclaim = \"z\"\nbetter = \"a\"\nthan = \"a\"\nimbalance = [7]\n");
    assert!(factor.contains("no imbalance factor 7"), "{factor}");
    let trend = parse(
        "[[claims]]\nclaim = \"z\"\nbetter = \"a\"\nthan = \"a\"\ngrows-with-imbalance = true\n",
    );
    assert!(trend.contains("needs two imbalance factors"), "{trend}");
}

/// Three methods on digits, the two draws of the Meta Sampler among them, and equivalence
/// claims on top-1 and on the learned rates.
const EQUIVALENCE: &str = r#"name = "equivalence"
seeds = [1, 2, 3, 4]
datasets = [{ digits-lt = { imbalance = [10] } }]
[[methods]]
name = "ce"
[[methods]]
name = "exact"
stage1 = "ce"
sampler = "meta"
[[methods]]
name = "fast"
stage1 = "ce"
sampler = { meta = { draw = "order-statistics" } }
[[claims]]
claim = "the draws agree"
better = "fast"
than = "exact"
equivalence-margin = 1.5
[[claims]]
claim = "tight margin"
better = "fast"
than = "exact"
equivalence-margin = 0.1
[[claims]]
claim = "far apart"
better = "fast"
than = "ce"
equivalence-margin = 0.4
[[claims]]
claim = "rates agree"
better = "fast"
than = "exact"
equivalence-margin = 0.02
metric = "meta-rates"
[[claims]]
claim = "identical runs"
better = "exact"
than = "exact"
equivalence-margin = 1.5
"#;

#[test]
fn equivalence_claims_use_two_one_sided_tests_on_top1_and_on_learned_rates() {
    let text = EQUIVALENCE;
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Plan::from_file(MatrixFile::parse(text, "e.toml".as_ref()).unwrap(), "e.toml".as_ref())
            .unwrap();
    let store = Store::new(dir.path());
    // Top-1 (%): exact 84 + s; fast differs by +0.1, -0.1, +0.2, 0 (mean 0.05, s 0.1291), on
    // every class alike; ce is 2 points lower. The 500 test images dominate: per class the
    // Agresti-Coull variance of a 0.0005 disagreement on 50 images; the 90% interval is
    // [-1.2773, 1.3773] (mpmath, Satterthwaite), inside 1.5, not inside 0.1. fast - ce:
    // 2.05, [0.4344, 3.6656], beyond 0.4.
    let offsets = [0.1, -0.1, 0.2, 0.0];
    for cell in plan.cells() {
        for seed in 1..=4u64 {
            let s = seed as f64;
            let (top1, rates) = match cell.method.name.as_str() {
                "ce" => (82.0 + s, None),
                "exact" => (84.0 + s, Some(vec![0.4, 0.5, 0.6])),
                _ => (
                    84.0 + s + offsets[usize::try_from(seed).unwrap() - 1],
                    Some(vec![0.4 + 0.001 * s, 0.5 - 0.001 * s, 0.7 + 0.001 * s]),
                ),
            };
            let mut m = metrics(&plan, &cell, seed, top1 / 100.0);
            m.meta_rates = rates.map(|r| vec![vec![0.5; 3], r]);
            let run_dir = store.run_dir(&plan.name, &cell, seed);
            store::write_json(&run_dir.join("metrics.json"), &m).unwrap();
            write_config(&run_dir);
        }
    }
    let report = balms::report::collect(&plan, &store).unwrap();
    let verdicts: Vec<(String, String)> =
        report.claims.iter().map(|r| (r.what.clone(), format!("{:?}", r.verdict))).collect();
    let e = report.claims[0].estimate.unwrap();
    assert!((e.mean - 0.05).abs() < 1e-9 && (e.lower + 1.277_268).abs() < 1e-6, "{e:?}");
    assert!((e.upper - 1.377_268).abs() < 1e-6 && (e.std_err - 0.806_911_44).abs() < 1e-7);
    let far = report.claims[2].estimate.unwrap();
    assert!((far.lower - 0.434_408_64).abs() < 1e-5, "{far:?}");
    assert_eq!(
        verdicts,
        [
            ("top-1", "Equivalent"),
            ("top-1", "Inconclusive"),
            ("top-1", "Different"),
            ("rate of class 0", "Equivalent"),
            ("rate of class 1", "Equivalent"),
            ("rate of class 2", "Different"),
            // Tied seeds (every difference 0) still carry the test set's term: judged.
            ("top-1", "Equivalent"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    insta::assert_snapshot!("equivalence_markdown", balms::report::claims::render(&report.claims));
    // Before any run: every claim says so, the rates claim in one row.
    let empty = balms::report::collect(&plan, &Store::new(dir.path().join("none"))).unwrap();
    let rows: Vec<(String, String)> =
        empty.claims.iter().map(|r| (r.what.clone(), format!("{:?}", r.verdict))).collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[3], ("learned rates".to_string(), "NotRun".to_string()));
    assert!(empty.claims.iter().all(|r| r.bootstrap.is_none() && r.improvement.is_none()));
    // The rules: a margin is positive; rates need rates on both sides and a margin.
    let head = "name = \"x\"\nseeds = [1, 2]\ndatasets = [{ digits-lt = { imbalance = [10] } }]\n[[methods]]\nname = \"a\"\n[[methods]]\nname = \"m\"\nstage1 = \"a\"\nsampler = \"meta\"\n";
    let refuse = |claim: &str| {
        let text =
            format!("{head}[[claims]]\nclaim = \"z\"\nbetter = \"m\"\nthan = \"a\"\n{claim}");
        Plan::from_file(MatrixFile::parse(&text, "x.toml".as_ref()).unwrap(), "x.toml".as_ref())
            .unwrap_err()
            .to_string()
    };
    let e = refuse("min-seeds = 3\n");
    assert!(e.contains("`min-seeds` = 3 is more than the matrix's 2 seeds"), "{e}");
    let e = refuse("equivalence-margin = 0\n");
    assert!(e.contains("`equivalence-margin` = 0 must be positive"), "{e}");
    let e = refuse("metric = \"meta-rates\"\n");
    assert!(e.contains("needs `equivalence-margin`"), "{e}");
    let e = refuse("metric = \"meta-rates\"\nequivalence-margin = 0.1\n");
    assert!(e.contains("`a` uses neither the Meta Sampler nor the Reweighter"), "{e}");
}

/// A Table 2 layout: rows the runs put inside, above and below the paper's values, one with
/// one run, one with two, one whose runs all failed, and one the paper lacks.
const LAYOUT: &str = r#"name = "layout"
description = "Fixture."
seeds = [1, 2, 3]
datasets = [{ cifar10-lt = { imbalance = [200] } }]
[[methods]]
name = "softmax"
[[methods]]
name = "cbw"
loss = "cbw"
[[methods]]
name = "cbs"
sampler = "class-balanced"
[[methods]]
name = "lws"
loss = "focal"
[[methods]]
name = "extra"
loss = "balanced-softmax"
[[methods]]
name = "two"
loss = "ldam"
[[methods]]
name = "diverged"
loss = "equalization"
[paper]
table = "table2"
rows = { softmax = "Softmax", cbw = "CBW", cbs = "CBS", lws = "LWS", two = "LDAM Loss", diverged = "Equalization Loss" }
[[figures]]
kind = "marginal-likelihood"
methods = ["softmax", "cbs", "extra"]
[[figures]]
name = "paper"
kind = "marginal-likelihood"
methods = ["softmax", "cbs"]
paper = "figure2"
"#;

#[test]
fn paper_layout_sets_our_intervals_beside_the_papers_values() {
    let text = LAYOUT;
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Plan::from_file(MatrixFile::parse(text, "l.toml".as_ref()).unwrap(), "l.toml".as_ref())
            .unwrap();
    let store = Store::new(dir.path().join("results"));
    // Paper: Softmax 71.2, CBW 72.5, CBS 68.3, LWS 78.1 (cifar10-lt IF 200).
    let values: &[(&str, &[f64])] = &[
        ("softmax", &[70.9, 71.2, 71.5]), // interval contains 71.2
        ("cbw", &[80.0, 80.5, 81.0]),     // above 72.5
        ("cbs", &[60.0, 60.2, 60.4]),     // below 68.3
        ("lws", &[78.0]),                 // one run
        ("two", &[60.0, 60.1]),           // far below 73.6, but two runs carry no verdict
    ];
    for cell in plan.cells() {
        if cell.method.name == "diverged" {
            for seed in 1..=3 {
                let error = "training diverged: loss NaN at epoch 1, iteration 1";
                write_failure(&store, &plan, &cell, seed, error);
            }
        }
        let Some((_, tops)) = values.iter().find(|(m, _)| *m == cell.method.name) else { continue };
        for (seed, top1) in (1u64..).zip(tops.iter()) {
            write_run(&store, &plan, &cell, seed, top1 / 100.0);
        }
    }
    let report = balms::report::collect(&plan, &store).unwrap();
    let layout = balms::report::layout::build(&report, plan.paper.as_ref().unwrap()).unwrap();
    let verdict = |row: &str| {
        let i = layout.rows.iter().position(|(r, _)| r == row).unwrap_or_else(|| panic!("{row}"));
        layout.cells[i][0].verdict.label()
    };
    assert_eq!(
        [
            verdict("Softmax"),
            verdict("CBW"),
            verdict("CBS"),
            verdict("LWS"),
            verdict("BALMS"),
            verdict("LDAM Loss"),
            verdict("Equalization Loss"),
        ],
        [
            "consistent",
            "above",
            "below",
            "one run",
            "not run",
            "inconclusive (2 runs; a verdict needs 3)",
            "failed"
        ]
    );
    // Paper rows first, in the paper's order; then our methods the paper lacks.
    assert_eq!(layout.rows.len(), 11);
    assert_eq!(layout.rows[0].0, "Softmax");
    assert_eq!(
        layout.rows[10],
        ("extra (not in the paper's table)".to_string(), Some("extra".to_string()))
    );
    let paper = dir.path().join("paper");
    balms::report::write_collected(&report, &paper).unwrap();
    let md = std::fs::read_to_string(paper.join("layout.table.md")).unwrap();
    // CBS: seeds 60.0, 60.2, 60.4 (s^2 / n = 0.04 / 3); 1,000 test images per class, 7 classes
    // at 65.2% and 3 at 60.2% (Agresti-Coull each, weight 1/10): s.e. 0.4933, [59.2315,
    // 61.1685] by Satterthwaite (mpmath).
    assert!(md.contains("| CBS | 60.20 ± 0.49 [59.23, 61.17] n=3 | 68.3 ± 0.3 | below |"), "{md}");
    assert!(md.contains("| Equalization Loss | failed: training diverged: loss NaN at epoch 1, iteration 1 (3/3 runs) | 74.6 ± 0.1 | failed |"), "{md}");
    let tex = std::fs::read_to_string(paper.join("layout.table.tex")).unwrap();
    assert!(
        tex.contains("Softmax & $71.2 \\pm 0.5$ (71.2) \\\\") && tex.contains("\\toprule"),
        "{tex}"
    );
    let csv = std::fs::read_to_string(paper.join("layout.table.csv")).unwrap();
    assert!(csv.contains("CBW,cbw,cifar10-lt/if200,80.5000,0.4665,"), "{csv}");
    insta::assert_snapshot!("paper_layout_csv", csv);
    insta::assert_snapshot!("paper_layout_latex", tex);
    assert!(csv.contains(",72.5,0.2,above,\n"), "{csv}");
    assert!(csv.contains(",74.6,0.1,failed,\"failed: training diverged: loss NaN at epoch 1, iteration 1 (3/3 runs)\"\n"), "{csv}");
    insta::assert_snapshot!("paper_layout_markdown", md);
    // The p(y) figure: the methods asked for that have runs (extra has none), mean over seeds.
    let figures = paper.join("figures");
    let data =
        std::fs::read_to_string(figures.join("layout.marginal-likelihood.cifar10-lt-if200.csv"))
            .unwrap();
    let head = "class,softmax,softmax_lower,softmax_upper,cbs,cbs_lower,cbs_upper\n";
    assert!(data.starts_with(head), "{data}");
    assert_eq!(data.lines().count(), 11);
    let svg =
        std::fs::read_to_string(figures.join("layout.marginal-likelihood.cifar10-lt-if200.svg"))
            .unwrap();
    // One shaded band per curve; the legend names both and the dashed uniform level.
    assert_eq!(svg.matches("<polygon").count(), 2, "{svg}");
    insta::assert_snapshot!("paper_layout_py_figure_data", data);
    // In the layout of the paper's Figure 2: one file, a panel per column, on the paper's
    // CIFAR-10 y range (0.04 to 0.22), no per-column files.
    let paper_figure = std::fs::read_to_string(figures.join("layout.paper.figure2.svg")).unwrap();
    assert!(paper_figure.contains("in the layout of the paper&apos;s Figure 2"), "{paper_figure}");
    // The data lie within 0.1 +- 0.003; the axis still spans the paper's 0.04 to 0.22.
    assert!(
        paper_figure.contains("\n0.050\n") && paper_figure.contains("\n0.200\n"),
        "{paper_figure}"
    );
    assert!(!figures.join("layout.paper.cifar10-lt-if200.svg").exists());
    let paper_data = std::fs::read_to_string(figures.join("layout.paper.figure2.csv")).unwrap();
    assert!(paper_data.starts_with("# cifar10-lt IF 200\nclass,softmax,"), "{paper_data}");
    for entry in ["softmax", "cbs", "uniform 1/10", "shaded: 95% band over seeds"] {
        assert!(svg.contains(&format!(">\n{entry}\n</text>")), "{entry}: {svg}");
    }
}

#[test]
fn a_paper_table_or_row_that_does_not_exist_is_refused() {
    let parse = plan_error;
    let table = parse("[paper]\ntable = \"table6\"\nrows = {}\n");
    assert!(
        table.contains("paper.table: no reference table `table6` (known: table2, table3"),
        "{table}"
    );
    let row = parse("[paper]\ntable = \"table2\"\nrows = { a = \"Softmax CE\" }\n");
    assert!(
        row.contains("paper.rows.a: `table2` has no row `Softmax CE` (rows: Softmax, CBW"),
        "{row}"
    );
    let method = parse("[paper]\ntable = \"table2\"\nrows = { b = \"Softmax\" }\n");
    assert!(method.contains("paper.rows: no method `b`"), "{method}");
}

/// The issue's inputs, run for real on digits: a method that diverges beside Softmax, two
/// seeds, a many-shot group of one class that both runs get 100% right.
#[test]
fn failed_runs_tied_seeds_and_too_few_seeds_are_reported_as_such() {
    let text = r#"name = "honest"
seeds = [1, 2]
datasets = [{ digits-lt = { imbalance = [10] } }]
[defaults]
model = { mlp = { hidden = [32] } }
epochs = 3
batch-size = 32
optimizer = { lr = 0.05, momentum = 0.9, weight-decay = 5e-4 }
[[methods]]
name = "softmax"
[[methods]]
name = "balanced-softmax"
loss = "balanced-softmax"
[[methods]]
name = "diverges"
optimizer = { lr = 1e30, momentum = 0.9, weight-decay = 5e-4 }
[[claims]]
claim = "BS beats Softmax"
better = "balanced-softmax"
than = "softmax"
[[claims]]
claim = "BS beats Softmax, two seeds allowed"
better = "balanced-softmax"
than = "softmax"
min-seeds = 2
[[claims]]
claim = "Softmax beats the diverged"
better = "softmax"
than = "diverges"
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = crate::util::matrix(dir.path(), "honest.toml", text);
    let results = dir.path().join("results");
    let output = crate::util::run_matrix_with(&path, &results, &["--threads", "1"]);
    assert_eq!(output.status.code(), Some(2), "{}", crate::util::stderr(&output));
    let paper = dir.path().join("paper");
    let (m, r, p) = (path.to_str().unwrap(), results.to_str().unwrap(), paper.to_str().unwrap());
    let report = crate::util::run(&["report", m, "--results", r, "--paper", p]);
    assert!(report.status.success(), "{}", crate::util::stderr(&report));
    let md = std::fs::read_to_string(paper.join("honest.md")).unwrap();
    // The failed cell says so, and why, in the main table and the group table; the caption
    // lists every failed run.
    let failed = "failed: training diverged: loss NaN at epoch 1, iteration 1 (2/2 runs)";
    assert!(md.contains(&format!("| diverges         | {failed} |")), "{md}");
    assert!(md.contains("| diverges         | failed (2/2)"), "{md}");
    assert!(md.contains("**Failed runs (2).** `digits-lt/if10/diverges` seed 1: training"));
    // Class 0 alone is many-shot, right on all 50 test images in both runs: its interval has
    // width, and the caption says how it was formed.
    let softmax = md
        .lines()
        .find(|l| l.starts_with("| softmax  ") && l.contains("100.00 ±"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(!softmax.contains("[100.0, 100.0]") && softmax.contains(", 100.0]"), "{softmax}");
    assert!(md.contains("Agresti-Coull") && md.contains("digits-lt, 50 images per class"));
    // The caption says, from the records, how many validation images are also training images
    // (digits IF 10 leaves too few unused images in some classes).
    assert!(md.contains("of its 200 images also training images"), "{md}");
    // Verdicts: two paired seeds are too few by default, enough when the claim says so; a
    // comparison with a failed cell is withheld, not "not run".
    let plan =
        Plan::from_file(MatrixFile::parse(text, "h.toml".as_ref()).unwrap(), "h.toml".as_ref())
            .unwrap();
    let collected = balms::report::collect(&plan, &Store::new(&results)).unwrap();
    let verdicts: Vec<String> = collected.claims.iter().map(|c| c.verdict.label()).collect();
    assert_eq!(verdicts[0], "inconclusive (2 paired seeds; needs 3)");
    assert!(!verdicts[1].contains("paired seeds"), "{verdicts:?}");
    assert_eq!(verdicts[2], "inconclusive (2 runs failed)");
}

/// MNIST's test set is unbalanced (892 to 1,135 images per digit): the headline is the mean
/// per-class accuracy, with top-1 beside it, and the caption says which is which.
#[test]
fn an_unbalanced_test_set_leads_with_the_mean_per_class_accuracy() {
    let text = "name = \"mnist\"\nseeds = [1, 2, 3]\ndatasets = [{ mnist-lt = { imbalance = [100] } }]\n[[methods]]\nname = \"softmax\"\n";
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Plan::from_file(MatrixFile::parse(text, "m.toml".as_ref()).unwrap(), "m.toml".as_ref())
            .unwrap();
    let store = Store::new(dir.path());
    let cell = &plan.cells()[0];
    for seed in 1..=3u64 {
        let mut m = metrics(&plan, cell, seed, 0.9);
        let e = m.evaluation.as_mut().unwrap();
        assert_eq!(e.test_size, 10_000);
        // Digit d right at 0.5 + 0.05 d: the mean per-class accuracy is 72.5%, top-1 as recorded.
        e.per_class_accuracy = (0..10).map(|d| 0.5 + 0.05 * f64::from(d)).collect();
        e.top1 = 0.70 + 0.001 * seed as f64;
        let run_dir = store.run_dir(&plan.name, cell, seed);
        store::write_json(&run_dir.join("metrics.json"), &m).unwrap();
        write_config(&run_dir);
    }
    let report = balms::report::collect(&plan, &store).unwrap();
    assert!(!report.cells[0].test.balanced() && !report.cells[0].test.assumed);
    let md = balms::report::render_markdown(&report);
    assert!(
        md.contains("| Method  | mnist-lt IF 100 mean per-class  | mnist-lt IF 100 top-1 "),
        "{md}"
    );
    assert!(md.contains("| softmax | 72.50 ± "), "{md}");
    assert!(md.contains("70.20 ± "), "{md}");
    assert!(md.contains("mnist-lt, 892 to 1135 images per class (unbalanced: the headline is the mean per-class accuracy, top-1 beside it)"), "{md}");
}

/// Named metrics external methods report: tabled per method over seeds, and compared by a claim.
#[test]
fn named_metrics_are_tabled_over_seeds_and_compared_by_claims() {
    let text = r#"name = "named"
seeds = [1, 2, 3]
datasets = [{ digits-lt = { imbalance = [10] } }]
[[methods]]
name = "a"
external = { command = ["a.sh"] }
[[methods]]
name = "b"
external = { command = ["b.sh"] }
[[claims]]
claim = "b and a give the same mask AP"
better = "b"
than = "a"
equivalence-margin = 3.0
metric = { named = "APm" }
[[claims]]
claim = "b beats a on box AP"
better = "b"
than = "a"
metric = { named = "APb" }
[[claims]]
claim = "a metric no run reports"
better = "b"
than = "a"
metric = { named = "APx" }
"#;
    let dir = tempfile::tempdir().unwrap();
    let plan =
        Plan::from_file(MatrixFile::parse(text, "n.toml".as_ref()).unwrap(), "n.toml".as_ref())
            .unwrap();
    let store = Store::new(dir.path());
    for cell in plan.cells() {
        let values: [f64; 3] =
            if cell.method.name == "a" { [20.0, 21.0, 22.0] } else { [21.0, 22.0, 24.0] };
        for seed in 1..=3u64 {
            let mut m = metrics(&plan, &cell, seed, 0.8);
            let v = values[usize::try_from(seed).unwrap() - 1];
            m.named_metrics = [("APm".to_string(), v), ("APb".to_string(), v + 1.0)].into();
            let run_dir = store.run_dir(&plan.name, &cell, seed);
            store::write_json(&run_dir.join("metrics.json"), &m).unwrap();
            write_config(&run_dir);
        }
    }
    let report = balms::report::collect(&plan, &store).unwrap();
    // b - a per seed: 1, 1, 2; mean 4/3, s.e. 1/3, t(0.95; 2) = 2.919986: [0.3600, 2.3067].
    let e = report.claims[0].estimate.unwrap();
    assert!((e.mean - 4.0 / 3.0).abs() < 1e-12 && (e.std_err - 1.0 / 3.0).abs() < 1e-12);
    assert!((e.lower - 0.359_995).abs() < 1e-5 && (e.upper - 2.306_662).abs() < 1e-5, "{e:?}");
    assert_eq!(format!("{:?}", report.claims[0].verdict), "Equivalent");
    assert_eq!(report.claims[0].what, "`APm`");
    // A difference on a named metric: the same paired differences (APb = APm + 1), at 95% over
    // the seeds alone, t(0.975; 2) = 4.302653: [-0.1009, 2.7676], so inconclusive.
    let d = report.claims[1].estimate.unwrap();
    assert!((d.mean - 4.0 / 3.0).abs() < 1e-12 && (d.std_err - 1.0 / 3.0).abs() < 1e-12);
    assert!((d.lower + 0.100_884).abs() < 1e-5 && (d.upper - 2.767_551).abs() < 1e-5, "{d:?}");
    assert_eq!(format!("{:?}", report.claims[1].verdict), "Inconclusive");
    assert_eq!(report.claims[1].what, "`APb`");
    // A name no run reports (a misspelling) is said, not shown as "not run".
    assert_eq!(format!("{:?}", report.claims[2].verdict), "Withheld(Unreported(6))");
    let markdown = balms::report::render_markdown(&report);
    // a: 21 ± 0.5774, t(0.975; 2) = 4.302653: [18.5159, 23.4841].
    assert!(markdown.contains("21.0000 ± 0.5774 [18.5159, 23.4841], 3"), "{markdown}");
    let start = markdown.find("## digits-lt IF 10: named metrics").expect("the named table");
    let end = markdown[start..].find("## Equivalence").map_or(markdown.len(), |e| start + e);
    insta::assert_snapshot!("named_metrics_markdown", &markdown[start..end]);
}
