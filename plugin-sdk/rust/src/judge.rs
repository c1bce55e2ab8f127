//! Judges: does a sampled answer give the forgotten answer away?
//!
//! The sampling attack draws n answers per question at a temperature; a judge says which of
//! them leak, and the host turns the count into leak@k for k = 1…n. The host's own judge asks
//! for every key term of the example; a plugin judge can match more richly (synonyms, numbers
//! written differently, partial credit thresholds, …).

use crate::__private::judge_world::exports::lethe::plugin::judge as wit;
use crate::error::{parse_config, schema_of};
use crate::{API_VERSION, PluginError, Result};

pub use wit::Sampled;

/// A judge of sampled answers.
pub trait Judge {
    /// The configuration, deserialised from JSON that the host validated against its schema.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// A short identifier: lowercase letters, digits and '-'.
    const NAME: &'static str;
    /// The plugin's own version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One sentence for listings.
    const SUMMARY: &'static str;

    /// For each question, in order: for each of its samples, whether it leaks; `None` when the
    /// question cannot be judged (it is then left out of leak@k).
    fn judge(config: Self::Config, questions: &[Sampled]) -> Result<Vec<Option<Vec<bool>>>>;
}

#[doc(hidden)]
pub fn judge_manifest<J: Judge>() -> wit::JudgeManifest {
    wit::JudgeManifest {
        name: J::NAME.to_owned(),
        version: J::VERSION.to_owned(),
        api_version: API_VERSION.to_owned(),
        summary: J::SUMMARY.to_owned(),
        config_schema: schema_of::<J::Config>(),
    }
}

#[doc(hidden)]
pub fn run_judge<J: Judge>(
    config: String,
    questions: Vec<Sampled>,
) -> std::result::Result<Vec<Option<Vec<bool>>>, wit::PluginError> {
    let config: J::Config = parse_config(&config)?;
    J::judge(config, &questions).map_err(PluginError::into)
}

/// Export a type implementing [`Judge`] as this component's judge.
#[macro_export]
macro_rules! export_judge {
    ($ty:ty) => {
        #[doc(hidden)]
        struct __LetheJudgeExport;

        impl $crate::__private::judge_world::exports::lethe::plugin::judge::Guest
            for __LetheJudgeExport
        {
            fn describe() -> $crate::__private::judge_world::exports::lethe::plugin::judge::JudgeManifest {
                $crate::__private::judge_manifest::<$ty>()
            }

            fn judge(
                config: ::std::string::String,
                questions: ::std::vec::Vec<$crate::judge::Sampled>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<::std::option::Option<::std::vec::Vec<bool>>>,
                $crate::__private::method_world::lethe::plugin::types::PluginError,
            > {
                $crate::__private::run_judge::<$ty>(config, questions)
            }
        }

        // Native builds (unit tests) export nothing: the component ABI names only exist in wasm.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::judge_world::export_judge_world!(__LetheJudgeExport with_types_in $crate::__private::judge_world);
    };
}
