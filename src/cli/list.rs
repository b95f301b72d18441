//! `balms list`: every name a matrix may use, generated from the registries themselves. Names
//! come from the enums' variants, the defaults from serde (a bare name is the variant with every
//! parameter's default, as in a matrix), and the one-line descriptions from each variant's
//! `#[strum(message)]`; a variant whose parameters have no defaults shows its
//! `#[strum(detailed_message)]` example. Adding a variant adds its line.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde::Serialize;
use strum::{EnumMessage, IntoEnumIterator, VariantNames};

use crate::config::from_bare_name;
use crate::data::augment::AugmentSpec;
use crate::data::DatasetSpec;
use crate::device::Precision;
use crate::loss::LossSpec;
use crate::matrix::Drw;
use crate::model::{ClassifierSpec, ModelSpec};
use crate::sampler::SamplerSpec;
use crate::vocab::{Features, Selection, Stage2Classifier, Stepping};

/// Prints [`registry_listing`].
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn run() -> ExitCode {
    print!("{}", registry_listing());
    ExitCode::SUCCESS
}

/// Width of the name-and-parameters column; a longer entry puts its description on the next line.
const COLUMN: usize = 40;

/// One line per registered name, by registry: what `balms list` prints and the README shows.
#[must_use]
pub fn registry_listing() -> String {
    let mut out = String::new();
    section::<LossSpec>(
        &mut out,
        "losses (`loss = \"name\"`, or `loss = { name = { parameter = value } }`)",
    );
    section::<SamplerSpec>(&mut out, "samplers (`sampler`; in stage 2, `stage2.sampler`)");
    section::<ClassifierSpec>(&mut out, "classifiers (`classifier`, end-to-end and stage 1)");
    let drw = form(&std::collections::BTreeMap::from([("drw", Drw::default())]));
    let _ = writeln!(out, "deferred re-weighting (`drw`, on any loss):\n  {drw}");
    section::<Stage2Classifier>(&mut out, "stage-2 classifiers (`stage2.classifier`)");
    section::<Features>(&mut out, "stage-2 features (`stage2.features`)");
    section::<Stepping>(&mut out, "stepping (`schedule.stepping`, `stage2.stepping`)");
    section::<Selection>(&mut out, "model selection (`selection`, `stage2.selection`)");
    section::<Precision>(&mut out, "precision (`precision`; `channels-last = true` for NHWC)");
    section::<ModelSpec>(&mut out, "models (`model`)");
    section::<AugmentSpec>(&mut out, "augmentation (`augment`)");
    section::<DatasetSpec>(&mut out, "datasets (`datasets = [{ name = { ... } }]`)");
    out
}

/// A registry's heading and one line per variant, in declaration order.
fn section<T>(out: &mut String, heading: &str)
where
    T: VariantNames + IntoEnumIterator + EnumMessage + DeserializeOwned + Serialize,
{
    let _ = writeln!(out, "{heading}:");
    for (name, variant) in T::VARIANTS.iter().zip(T::iter()) {
        let about = variant.get_message().unwrap_or_default();
        let example = example(&variant);
        let entry = match (from_bare_name::<T>(name), example) {
            (Ok(defaults), _) => form(&defaults),
            (Err(_), Some(example)) => example.to_string(),
            (Err(_), None) => (*name).to_string(),
        };
        if entry.len() < COLUMN {
            let _ = writeln!(out, "  {entry:<COLUMN$}{about}");
        } else {
            let _ = writeln!(out, "  {entry}\n  {:<COLUMN$}{about}", "");
        }
        // An example of what the defaults do not show (another value, an unset option).
        if let Some(example) = example.filter(|e| *e != entry) {
            let _ = writeln!(out, "  {:<COLUMN$}e.g. {example}", "");
        }
    }
}

/// A variant's `#[strum(detailed_message)]`: an example in the listing's syntax (strum answers
/// the plain message where there is none).
fn example<T: EnumMessage>(variant: &T) -> Option<&'static str> {
    variant.get_detailed_message().filter(|d| Some(*d) != variant.get_message())
}

/// A registry value as the listing writes it, fields in declaration order: `name`, or
/// `name { parameter = default, ... }` (unset options left out).
fn form<T: Serialize>(value: &T) -> String {
    let mut inline = String::new();
    value
        .serialize(toml::ser::ValueSerializer::new(&mut inline))
        .expect("registry values serialise as TOML");
    // `"name"` for a unit variant; `{ name = { ... } }` or `{ name = value }` otherwise.
    if let Some(name) = inline.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return name.to_string();
    }
    let inner = inline.strip_prefix("{ ").and_then(|s| s.strip_suffix(" }")).unwrap_or(&inline);
    match inner.split_once(" = ") {
        Some((name, "{}")) => name.to_string(),
        Some((name, table)) if table.starts_with('{') => format!("{name} {table}"),
        Some((name, scalar)) => format!("{name} = {scalar}"),
        None => inner.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has defaults or an example, and every example parses as its registry's value.
    fn examples_parse<T>()
    where
        T: VariantNames + IntoEnumIterator + EnumMessage + DeserializeOwned,
    {
        for (name, variant) in T::VARIANTS.iter().zip(T::iter()) {
            let Some(example) = example(&variant) else {
                assert!(from_bare_name::<T>(name).is_ok(), "`{name}` needs an example form");
                continue;
            };
            let (head, table) = example.split_once(' ').expect("name { ... }");
            assert_eq!(head, *name, "the example of `{name}` names another variant");
            // Quoted: a name with a dot (`lvis-v0.5`) is a quoted key in TOML.
            let text = format!("value = {{ \"{name}\" = {table} }}");
            let value: toml::Table = toml::from_str(&text).expect("TOML");
            let parsed: Result<T, _> = value["value"].clone().try_into();
            assert!(parsed.is_ok(), "the example of `{name}` does not parse: {example}");
        }
    }

    #[test]
    fn examples_are_valid_matrix_syntax() {
        examples_parse::<LossSpec>();
        examples_parse::<SamplerSpec>();
        examples_parse::<ModelSpec>();
        examples_parse::<AugmentSpec>();
        examples_parse::<DatasetSpec>();
        examples_parse::<Stage2Classifier>();
    }

    #[test]
    fn defaults_are_the_registries_own() {
        let listing = registry_listing();
        for line in [
            "balanced-softmax { exponent = 1.0 }",
            "class-balanced-loss { beta = 0.9999, base = \"softmax\", gamma = 1.0 }",
            "meta { init-pow = 0.0, lr = 0.01, betas = [0.9, 0.999], meta-batch = 512",
            "ldam { max-margin = 0.5, scale = 30.0 }",
            "drw { start = 0.8, beta = 0.9999 }",
            "imagenet-lt { crop = 224, resize = 256 }",
            "  tau-norm  ",
        ] {
            assert!(listing.contains(line), "`{line}` missing from:\n{listing}");
        }
    }
}
