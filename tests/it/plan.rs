//! Plans: the resolved plan of every committed matrix (snapshots), and matrix errors.

use balms::config::MatrixFile;
use balms::matrix::Plan;

use crate::util::{matrix, run, stderr};

#[test]
fn every_committed_matrix_plans() {
    insta::glob!("../../experiments", "*.toml", |path| {
        let plan = Plan::load(path).unwrap();
        insta::assert_snapshot!(plan.render());
    });
}

#[test]
fn cifar_lt_counts_print_exactly() {
    let root = crate::util::root();
    let ten = Plan::load(&root.join("experiments/cifar_lt_table2.toml")).unwrap().render();
    for line in [
        "11203 training images (head 5000, tail 25)",
        "12406 training images",
        "20431 training images",
    ] {
        assert!(ten.contains(line), "{line}");
    }
    let hundred = &ten;
    for line in [
        "9502 training images (head 500, tail 2), many/medium/few classes 30/31/39",
        "10847 training images",
        "19573 training images",
    ] {
        assert!(hundred.contains(line), "{line}");
    }
}

#[test]
fn misspelled_loss_names_line_column_and_valid_names() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"x\"\nseeds = [1]\ndatasets = [{ digits-lt = { imbalance = [10] } }]\n\n[[methods]]\nname = \"a\"\nloss = \"balanced-sofmax\"\n";
    let path = matrix(dir.path(), "typo.toml", text);
    let output = run(&["plan", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output).replace(dir.path().to_str().unwrap(), "[TMP]");
    insta::assert_snapshot!(message);
}

fn plan_error(text: &str) -> String {
    let path = std::path::Path::new("experiments/x.toml");
    let file = MatrixFile::parse(text, path).map_err(|e| e.to_string()).unwrap();
    Plan::from_file(file, path).unwrap_err().to_string()
}

const HEAD: &str = "name = \"x\"\nseeds = [1]\ndatasets = [{ digits-lt = { imbalance = [10] } }]\n";

#[test]
fn semantic_errors_name_file_and_field() {
    let e = plan_error(&format!(
        "{HEAD}[[methods]]\nname = \"dt\"\nstage1 = \"softmx\"\n[[methods]]\nname = \"softmax\"\n"
    ));
    assert!(
        e.contains("experiments/x.toml")
            && e.contains("`stage1` = `softmx`")
            && e.contains("end-to-end methods: softmax"),
        "{e}"
    );
    let e = plan_error(&format!("{HEAD}[[methods]]\nname = \"a\"\nmodel = \"small-cnn\"\n"));
    assert!(e.contains("method `a` on `digits-lt/if10`") && e.contains("1x28x28"), "{e}");
    let e = plan_error("name = \"x\"\nseeds = [1]\ndatasets = [{ digits-lt = { imbalance = [1000] } }]\n[[methods]]\nname = \"a\"\n");
    assert!(e.contains("tail class would have no image"), "{e}");
    let e = plan_error(&format!("{HEAD}[[methods]]\nloss = \"softmax\"\n"));
    assert!(e.contains("method #1 has no `name`"), "{e}");
    let e = plan_error(&format!("{HEAD}[defaults]\nstage1 = \"a\"\n[[methods]]\nname = \"a\"\n"));
    assert!(e.contains("not defaults"), "{e}");
    let e = plan_error(&format!("{HEAD}[[methods]]\nname = \"a\"\n[[methods]]\nname = \"a\"\n"));
    assert!(e.contains("defined twice"), "{e}");
    let e = plan_error("name = \"x\"\nrepeats = 2\nseeds = [1]\ndatasets = [{ digits-lt = { imbalance = [10] } }]\n[[methods]]\nname = \"a\"\n");
    assert!(e.contains("not both"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}[defaults]\nepochs = 5\niterations = 10\n[[methods]]\nname = \"a\"\n"
    ));
    assert!(e.contains("epochs or in iterations"), "{e}");
}

#[test]
fn image_list_entries_and_their_augmentation_are_checked() {
    let list = |entry: &str, method: &str| {
        let model =
            if method.contains("model") { "" } else { "model = { resnet = { depth = 10 } }\n" };
        plan_error(&format!(
            "name = \"x\"\nseeds = [1]\ndatasets = [{{ {entry} }}]\n[[methods]]\nname = \"a\"\n{model}{method}"
        ))
    };
    let e = list(
        "image-list = { name = \"My/LT\", prefix = \"My_LT\", classes = 10, imbalance = 10 }",
        "",
    );
    assert!(e.contains("`datasets.image-list.name` = \"My/LT\""), "{e}");
    let e =
        list("image-list = { name = \"my\", prefix = \"../x\", classes = 10, imbalance = 10 }", "");
    assert!(e.contains("`datasets.image-list.prefix`"), "{e}");
    let e = list("imagenet-lt = { crop = 224, resize = 200 }", "");
    assert!(e.contains("`datasets.imagenet-lt`: crop 224 and resize 200"), "{e}");
    let e = list("places-lt = {}", "augment = { crop-flip = { padding = 4 } }\n");
    assert!(e.contains("method `a` on `places-lt/if996`: `augment`: `crop-flip`"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}[[methods]]\nname = \"a\"\naugment = {{ random-resized-crop = {{ jitter = 0.4 }} }}\n"
    ));
    assert!(e.contains("`random-resized-crop` is for image-list datasets"), "{e}");
    let e = list("imagenet-lt = {}", "model = { resnet = { depth = 11 } }\n");
    assert!(e.contains("`resnet.depth` = 11"), "{e}");
    let e = list("imagenet-lt = {}", "model = { resnet = { depth = 10, frozen = [\"fc\"] } }\n");
    assert!(e.contains("`resnet.frozen`: `fc` is not a layer"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}[[methods]]\nname = \"a\"\n[[methods]]\nname = \"b\"\nstage1 = \"a\"\nstage2 = {{ features = \"augmented\" }}\n"
    ));
    assert!(
        e.contains("method `b`: `stage2.features` = \"augmented\"") && e.contains("`a` has none"),
        "{e}"
    );
    let e = list("imagenet-lt = {}", "iterations = 0\n");
    assert!(e.contains("`iterations` = 0 takes a pretrained model as it is"), "{e}");
}

#[test]
fn unknown_fields_are_refused() {
    let err = MatrixFile::parse(
        &format!("{HEAD}[defaults]\nepoch = 3\n[[methods]]\nname = \"a\"\n"),
        std::path::Path::new("m.toml"),
    )
    .unwrap_err();
    let err = format!("{:#}", anyhow::Error::from(err));
    assert!(err.contains("unknown field `epoch`") && err.contains("m.toml"), "{err}");
}

#[test]
fn method_overrides_defaults_field_by_field() {
    let text = format!("{HEAD}[defaults]\nepochs = 5\noptimizer = {{ lr = 0.2, momentum = 0.5 }}\n[[methods]]\nname = \"a\"\noptimizer = {{ lr = 0.01 }}\n");
    let plan =
        Plan::from_file(MatrixFile::parse(&text, "m.toml".as_ref()).unwrap(), "m.toml".as_ref())
            .unwrap();
    let rendered = plan.render();
    assert!(rendered.contains("sgd lr 0.01 momentum 0.5 weight-decay 0.0005"), "{rendered}");
    assert!(rendered.contains("5 epochs"), "{rendered}");
}

fn plan_ok(text: &str) -> String {
    let path = std::path::Path::new("m.toml");
    Plan::from_file(MatrixFile::parse(text, path).unwrap(), path).unwrap().render()
}

#[test]
fn losses_take_a_bare_name_or_a_table_of_parameters() {
    let rendered = plan_ok(&format!(
        "{HEAD}[[methods]]\nname = \"a\"\nloss = \"focal\"\n[[methods]]\nname = \"b\"\nloss = {{ focal = {{ gamma = 2.0 }} }}\n[[methods]]\nname = \"c\"\nloss = {{ balanced-softmax = {{ exponent = 0.25 }} }}\nclassifier = \"scaled-cosine\"\ndrw = {{}}\n"
    ));
    assert!(rendered.contains("loss focal(gamma=1)"), "{rendered}");
    assert!(rendered.contains("loss focal(gamma=2)"), "{rendered}");
    assert!(rendered.contains("classifier scaled-cosine(s=16); loss balanced-softmax(q=0.25) with deferred re-weighting (class-balanced beta 0.9999 from 0.8 of the epochs)"), "{rendered}");
    let err = MatrixFile::parse(
        &format!("{HEAD}[[methods]]\nname = \"a\"\nloss = {{ focal = {{ gama = 2.0 }} }}\n"),
        std::path::Path::new("m.toml"),
    )
    .unwrap_err();
    let err = format!("{:#}", anyhow::Error::from(err));
    assert!(err.contains("unknown field `gama`") && err.contains("line 6"), "{err}");
    let e = plan_error(&format!(
        "{HEAD}[[methods]]\nname = \"a\"\nloss = {{ class-balanced-loss = {{ beta = 1.0 }} }}\n"
    ));
    assert!(e.contains("method `a`") && e.contains("`beta` = 1"), "{e}");
}

#[test]
fn decoupled_classifiers_are_checked_against_stage1() {
    let stage1 = "[[methods]]\nname = \"ce\"\n";
    let rendered = plan_ok(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"lws\"\nstage1 = \"ce\"\nsampler = \"class-balanced\"\nstage2 = {{ classifier = \"lws\", selection = \"best-val\" }}\n[[methods]]\nname = \"tau\"\nstage1 = \"ce\"\nstage2 = {{ classifier = \"tau-norm\" }}\n[[methods]]\nname = \"slow\"\nstage1 = \"ce\"\nstage2 = {{ features = \"per-batch\" }}\n"
    ));
    assert!(
        rendered.contains("features frozen (eval mode, recomputed for every batch)"),
        "{rendered}"
    );
    assert!(rendered.contains("stage 2: lws (stage-1 classifier fixed, per-class scales)"));
    assert!(rendered.contains("selection best-val"), "{rendered}");
    assert!(rendered.contains("tau: post hoc on the model of `ce`"), "{rendered}");
    let e = plan_error(&format!(
        "{HEAD}[[methods]]\nname = \"ce\"\nclassifier = \"cosine\"\n[[methods]]\nname = \"lws\"\nstage1 = \"ce\"\nstage2 = {{ classifier = \"lws\" }}\n"
    ));
    assert!(e.contains("needs a linear stage-1 classifier"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"la\"\nstage1 = \"ce\"\nloss = \"softmax\"\nstage2 = {{ classifier = {{ logit-adjust = {{ tau = 1.0 }} }} }}\n"
    ));
    assert!(e.contains("post hoc and trains nothing"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"d\"\nstage1 = \"ce\"\ndrw = {{}}\n"
    ));
    assert!(e.contains("`drw` belongs to the stage-1 method"), "{e}");
}

#[test]
fn meta_samplers_belong_to_stage2_and_take_parameters() {
    let stage1 = "[[methods]]\nname = \"ce\"\n";
    let rendered = plan_ok(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"balms\"\nstage1 = \"ce\"\nloss = \"balanced-softmax\"\nsampler = \"meta\"\n[[methods]]\nname = \"mr\"\nstage1 = \"ce\"\nsampler = {{ meta-reweighter = {{ init-pow = 0.1, betas = [0.9, 0.99], meta-set = \"validation\" }} }}\n"
    ));
    assert!(rendered.contains("sampler meta-sampler (init-pow 0, adam lr 0.01 betas (0.9, 0.999), meta batch 512 class-balanced from train, temperature 1)"), "{rendered}");
    assert!(rendered.contains("meta-reweighter (init-pow 0.1, adam lr 0.01 betas (0.9, 0.99), meta batch 512 class-balanced from validation"), "{rendered}");
    let e = plan_error(&format!("{HEAD}[[methods]]\nname = \"a\"\nsampler = \"meta\"\n"));
    assert!(e.contains("only in decoupled training"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"m\"\nstage1 = \"ce\"\nsampler = {{ meta = {{ lr = 0.0 }} }}\n"
    ));
    assert!(e.contains("`lr` = 0 must be positive"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"m\"\nstage1 = \"ce\"\nsampler = \"meta\"\nstage2 = {{ classifier = \"lws\" }}\n"
    ));
    assert!(e.contains("fresh classifier"), "{e}");
    // The official double pass: the Meta Sampler's, on training-mode batch norm only.
    for (sampler, features) in [("meta", "cached"), ("instance", "augmented-train-bn")] {
        let e = plan_error(&format!(
            "{HEAD}{stage1}[[methods]]\nname = \"m\"\nstage1 = \"ce\"\nsampler = \"{sampler}\"\nstage2 = {{ double-forward = true, features = \"{features}\" }}\n"
        ));
        assert!(e.contains("`stage2.double-forward` repeats the Meta Sampler's"), "{e}");
    }
    // The order-statistics draw: shown in the plan, temperature 1 only, the Meta Sampler's only.
    let rendered = plan_ok(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"m\"\nstage1 = \"ce\"\nsampler = {{ meta = {{ draw = \"order-statistics\" }} }}\n"
    ));
    assert!(rendered.contains("temperature 1, order-statistics draw)"), "{rendered}");
    let e = plan_error(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"m\"\nstage1 = \"ce\"\nsampler = {{ meta = {{ draw = \"order-statistics\", temperature = 0.5 }} }}\n"
    ));
    assert!(e.contains("needs `temperature` = 1"), "{e}");
    let e = plan_error(&format!(
        "{HEAD}{stage1}[[methods]]\nname = \"m\"\nstage1 = \"ce\"\nsampler = {{ meta-reweighter = {{ draw = \"order-statistics\" }} }}\n"
    ));
    assert!(e.contains("draws no Gumbel noise"), "{e}");
    let text = format!(
        "{HEAD}{stage1}[[methods]]\nname = \"m\"\nstage1 = \"ce\"\nsampler = {{ meta = {{ draw = \"renyi\" }} }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let e = stderr(&run(&["plan", matrix(dir.path(), "x.toml", &text).to_str().unwrap()]));
    assert!(e.contains("`exact`") && e.contains("`order-statistics`"), "{e}");
}

#[test]
fn precision_is_checked_and_belongs_to_stage1() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name = \"x\"\nseeds = [1]\ndatasets = [{ digits-lt = { imbalance = [10] } }]\n\n[[methods]]\nname = \"a\"\n";
    let bad = matrix(dir.path(), "bad.toml", &format!("{head}precision = \"fp8\"\n"));
    let message = stderr(&run(&["plan", bad.to_str().unwrap()]));
    assert!(message.contains("fp8") && message.contains("bf16-autocast"), "{message}");
    let stage2 = matrix(
        dir.path(),
        "stage2.toml",
        &format!(
            "{head}\n[[methods]]\nname = \"b\"\nstage1 = \"a\"\nprecision = \"bf16-autocast\"\n"
        ),
    );
    let message = stderr(&run(&["plan", stage2.to_str().unwrap()]));
    assert!(message.contains("`precision` belongs to the stage-1 method"), "{message}");
}

/// The input: `classifier = "cosine"` with Softmax or Balanced Softmax cannot train (its
/// logits lie in [-1, 1]); refused, naming what to write. LDAM keeps it; `scaled-cosine` brings
/// the scale for the others and is refused with LDAM, which would scale twice.
#[test]
fn a_classifier_its_loss_cannot_fit_is_refused() {
    let head = "name = \"c\"\nseeds = [1, 2]\ndatasets = [{ digits-lt = { imbalance = [100] } }]\n[defaults]\nmodel = { mlp = { hidden = [64] } }\nepochs = 8\n[[methods]]\nname = \"m\"\n";
    for loss in ["softmax", "balanced-softmax"] {
        let e = plan_error(&format!("{head}loss = \"{loss}\"\nclassifier = \"cosine\"\n"));
        assert!(
            e.contains("method `m`: `classifier = \"cosine\"` gives logits in [-1, 1]")
                && e.contains(&format!("`loss = \"{loss}\"` has no scale"))
                && e.contains("write `classifier = \"scaled-cosine\"`"),
            "{e}"
        );
    }
    let e = plan_error(&format!("{head}loss = \"ldam\"\nclassifier = \"scaled-cosine\"\n"));
    assert!(e.contains("would scale them twice; write `classifier = \"cosine\"`"), "{e}");
    let e = plan_error(&format!("{head}classifier = {{ scaled-cosine = {{ scale = 0 }} }}\n"));
    assert!(e.contains("`scaled-cosine` scale = 0 must be positive"), "{e}");
    let ok = plan_ok(&format!("{head}loss = \"ldam\"\nclassifier = \"cosine\"\n"));
    assert!(ok.contains("classifier cosine"), "{ok}");
    let ok =
        plan_ok(&format!("{head}loss = \"balanced-softmax\"\nclassifier = \"scaled-cosine\"\n"));
    assert!(ok.contains("classifier scaled-cosine(s=16)"), "{ok}");
}

/// A loss that corrects for the label prior, with class-balanced sampling, DRW, or a post-hoc
/// logit adjustment on top, corrects twice: planned (the paper runs such ablations), with a
/// caution each.
#[test]
fn double_prior_corrections_are_planned_with_a_caution() {
    let text = "name = \"c\"\nseeds = [1]\ndatasets = [{ digits-lt = { imbalance = [10] } }]\n[[methods]]\nname = \"bs\"\nloss = \"balanced-softmax\"\n[[methods]]\nname = \"bs-cbs\"\nloss = \"balanced-softmax\"\nsampler = \"class-balanced\"\n[[methods]]\nname = \"cbw-drw\"\nloss = \"cbw\"\ndrw = {}\n[[methods]]\nname = \"bs-la\"\nstage1 = \"bs\"\nstage2 = { classifier = { logit-adjust = { tau = 1.0 } } }\n[[methods]]\nname = \"plain\"\nsampler = \"class-balanced\"\n";
    let plan = plan_ok(text);
    let cautions: Vec<&str> = plan
        .lines()
        .skip_while(|l| !l.starts_with("cautions"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(
        cautions,
        [
            "  `bs-cbs`: `balanced-softmax` with class-balanced sampling corrects for the label prior twice (the paper's over-balance, §3.3)",
            "  `cbw-drw`: `cbw` with DRW's class-balanced weights corrects for the label prior twice (the paper's over-balance, §3.3)",
            "  `bs-la`: a post-hoc logit adjustment of `bs`, trained with `balanced-softmax`, corrects for the label prior twice (the paper's over-balance, §3.3)",
        ],
        "{plan}"
    );
}

/// A `[[figures]]` entry in the paper's layout must plot what that figure plots, on factors the
/// matrix has.
#[test]
fn paper_figures_are_checked() {
    let head = "name = \"f\"\nseeds = [1]\ndatasets = [{ digits-lt = { imbalance = [10] } }]\n[[methods]]\nname = \"m\"\n";
    let e = plan_error(&format!(
        "{head}[[figures]]\nkind = \"per-class-accuracy\"\npaper = \"figure1\"\n"
    ));
    assert!(e.contains("figures[0]: the paper's Figure 1 plots `marginal-likelihood`, not `per-class-accuracy`"), "{e}");
    let e = plan_error(&format!(
        "{head}[[figures]]\nkind = \"marginal-likelihood\"\nimbalance = [200]\n"
    ));
    assert!(e.contains("figures[0]: the matrix has no imbalance factor 200"), "{e}");
    plan_ok(&format!("{head}[[figures]]\nkind = \"meta-rates\"\npaper = \"figure3\"\n"));
}

/// The README's list of differences from the official CIFAR code is the one `balms plan` prints
/// for the CIFAR Table 2 matrix (`matrix::official`), word for word.
#[test]
fn the_readme_lists_the_cifar_matrices_differences_from_the_official_code() {
    use balms::matrix::official;
    let plan = Plan::load(&crate::util::root().join("experiments/cifar_lt_table2.toml")).unwrap();
    let protocol = plan.follows.expect("the CIFAR matrix declares the protocol it follows");
    let expected = official::markdown(&official::differences(&plan, protocol));
    let readme = std::fs::read_to_string(crate::util::root().join("README.md")).unwrap();
    let start = "<!-- differences: official-cifar -->\n";
    let block = readme
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("<!-- /differences -->"))
        .map(|(block, _)| block)
        .expect("README has the differences block");
    assert_eq!(
        block.trim(),
        expected.trim(),
        "README.md: paste this between the markers:\n{expected}"
    );
    // Each CIFAR matrix follows the protocol, and the README's rows cover its list.
    let settings: Vec<&str> =
        official::differences(&plan, protocol).iter().map(|d| d.setting).collect();
    for file in ["cifar_lt_table5.toml", "cifar10_lt_table8.toml"] {
        let other = Plan::load(&crate::util::root().join("experiments").join(file)).unwrap();
        assert_eq!(other.follows, Some(protocol), "{file}");
        for d in official::differences(&other, protocol) {
            assert!(
                settings.contains(&d.setting),
                "{file}: `{}` not in the README's list",
                d.setting
            );
        }
    }
    // A setting changed to the official one drops off; one changed away appears.
    let text =
        std::fs::read_to_string(crate::util::root().join("experiments/cifar10_lt_table8.toml"))
            .unwrap()
            .replace("nesterov = false", "nesterov = true")
            .replace(", features = \"augmented-train-bn\"", "")
            .replace("stepping = \"epoch\"", "stepping = \"iteration\"");
    let dir = tempfile::tempdir().unwrap();
    let changed = Plan::load(&matrix(dir.path(), "t8.toml", &text)).unwrap();
    let rows: Vec<&str> =
        official::differences(&changed, protocol).iter().map(|d| d.setting).collect();
    assert!(rows.contains(&"optimiser") && rows.contains(&"stage-2 backbone"), "{rows:?}");
    // Stepping per iteration everywhere: the epoch rows name every method, not only the
    // class-balanced ones.
    let differences = official::differences(&changed, protocol);
    for epochs in ["learning-rate schedule", "training length", "last batch of an epoch"] {
        let row = differences.iter().find(|d| d.setting == epochs).expect("an epoch row");
        assert!(row.balms.contains("(every method)"), "{row:?}");
    }
}
