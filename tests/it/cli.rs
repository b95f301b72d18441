//! The command line: help, listings, device and data errors.

use crate::util::{matrix, root, run, stderr};

#[test]
fn help_lists_the_verbs() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for verb in ["plan", "run", "report", "reproduce", "data", "list"] {
        assert!(text.contains(verb), "{text}");
    }
}

#[test]
fn cuda_request_fails_clearly_without_cuda() {
    if tch::Cuda::is_available() {
        return; // a GPU machine: nothing to check here
    }
    let dir = tempfile::tempdir().unwrap();
    let path = matrix(dir.path(), "m.toml", &crate::util::digits_matrix("m", "[1]", 0.05));
    let results = dir.path().join("results");
    let output = run(&[
        "run",
        path.to_str().unwrap(),
        "--device",
        "cuda",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`--device cuda` was asked for but CUDA is not usable"),
        "{}",
        stderr(&output)
    );
    assert!(!results.exists(), "nothing is written when the device is refused");
}

#[test]
fn missing_dataset_says_where_it_looked_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"c\"\nseeds = [1]\ndatasets = [{ cifar10-lt = { imbalance = [100] } }]\n[defaults]\nmodel = \"resnet32\"\n[[methods]]\nname = \"a\"\n";
    let path = matrix(dir.path(), "c.toml", text);
    let data = dir.path().join("data");
    let output = crate::util::balms(&[
        "run",
        path.to_str().unwrap(),
        "--device",
        "cpu",
        "--data-dir",
        data.to_str().unwrap(),
        "--results",
        dir.path().join("r").to_str().unwrap(),
    ])
    .env_remove("BALMS_DATA")
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("dataset `cifar10-lt` not found")
            && message.contains("cifar-10-batches-bin")
            && message.contains("cifar-10-binary.tar.gz"),
        "{message}"
    );
}

#[test]
fn data_and_list_commands() {
    let output = run(&["data"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("digits-lt          embedded"));
    let output = run(&["list"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("balanced-softmax"));
}

/// The registry's names, read from serde's "unknown variant" message for a bogus name.
fn registered<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
    let err = toml::Value::String("no-such-name".into()).try_into::<T>().unwrap_err().to_string();
    err.split('`').skip(3).step_by(2).map(str::to_string).collect()
}

/// strum's names (which `balms list` shows) are serde's (which matrices use).
fn names_agree<T: serde::de::DeserializeOwned + std::fmt::Debug + strum::VariantNames>() {
    assert_eq!(registered::<T>(), T::VARIANTS, "{}", std::any::type_name::<T>());
}

#[test]
fn listing_names_are_the_registries_names() {
    names_agree::<balms::loss::LossSpec>();
    names_agree::<balms::sampler::SamplerSpec>();
    names_agree::<balms::model::ModelSpec>();
    names_agree::<balms::model::ClassifierSpec>();
    names_agree::<balms::vocab::Stage2Classifier>();
    names_agree::<balms::vocab::Features>();
    names_agree::<balms::vocab::Selection>();
    names_agree::<balms::device::Precision>();
    names_agree::<balms::data::augment::AugmentSpec>();
    names_agree::<balms::data::DatasetSpec>();
    let listing = balms::cli::registry_listing();
    for name in registered::<balms::loss::LossSpec>() {
        assert!(listing.contains(&format!("\n  {name}")), "`balms list` does not show `{name}`");
    }
}

#[test]
fn readme_shows_the_generated_listing() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = format!("```text\n{}```", balms::cli::registry_listing());
    assert!(
        readme.contains(&block),
        "README's registry listing is not `balms list`'s output: run `just readme-listing`"
    );
}

#[test]
fn bench_times_balms_and_divides_by_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in reference that checks its arguments and reports a fixed speed.
    let script = dir.path().join("reference.py");
    std::fs::write(
        &script,
        "import sys\nargs = sys.argv\nassert args[args.index('--workload') + 1] == 'mlp-digits'\n\
         header = open(args[args.index('--data') + 1] + '/x.npy', 'rb').read(128)\n\
         assert b\"'shape': (503,1,8,8,)\" in header, header\n\
         print('{\"images_per_second\": 1000.0, \"torch\": \"stub\"}')\n",
    )
    .unwrap();
    let out = dir.path().join("bench");
    let output = run(&[
        "bench",
        "--workloads",
        "mlp-digits",
        "--steps",
        "200",
        "--threads",
        "1",
        "--python",
        "python3",
        "--script",
        script.to_str().unwrap(),
        "--scratch",
        dir.path().join("scratch").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.with_extension("json")).unwrap())
            .unwrap();
    let m = &report["measurements"][0];
    let balms = m["balms_images_per_second"].as_f64().unwrap();
    assert!(balms > 0.0);
    assert!((m["ratio"].as_f64().unwrap() - balms / 1000.0).abs() < 1e-9);
    assert_eq!(m["reference"]["torch"], "stub");
    let markdown = std::fs::read_to_string(out.with_extension("md")).unwrap();
    assert!(markdown.contains("| mlp-digits | 503 | 20 + 200 |"), "{markdown}");
}
