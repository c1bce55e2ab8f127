//! Query attacks: put a question differently, keep the weights.
//!
//! The host calls [`QueryAttack::prompts`] once per evaluated split with every question of it
//! (reference answers withheld) and observes the model on the returned prompts exactly as on
//! clean ones, so every metric scores the model under the attack. A question may come with
//! solved retain examples ([`QueryAttack::SHOTS`] of them, drawn by the host with the run's
//! seed) for few-shot style attacks.

use crate::__private::query_attack_world::exports::lethe::plugin::query_attack as wit;
use crate::error::{parse_config, schema_of};
use crate::{API_VERSION, PluginError, Result};

pub use wit::{Question, Solved};

/// A query attack.
pub trait QueryAttack {
    /// The configuration, deserialised from JSON that the host validated against its schema.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema;
    /// A short identifier: lowercase letters, digits and '-'. Results name the attack
    /// `query:<NAME>`.
    const NAME: &'static str;
    /// The plugin's own version; usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One sentence for listings.
    const SUMMARY: &'static str;
    /// Solved retain examples wanted beside each question (0: none).
    const SHOTS: u32 = 0;

    /// The prompt for each question, in order: the text the model continues (the host adds
    /// `<bos>`, and the reference answer when it teacher-forces). `None` leaves a question out.
    fn prompts(config: Self::Config, questions: &[Question]) -> Result<Vec<Option<String>>>;
}

#[doc(hidden)]
pub fn attack_manifest<A: QueryAttack>() -> wit::AttackManifest {
    wit::AttackManifest {
        name: A::NAME.to_owned(),
        version: A::VERSION.to_owned(),
        api_version: API_VERSION.to_owned(),
        summary: A::SUMMARY.to_owned(),
        config_schema: schema_of::<A::Config>(),
        shots: A::SHOTS,
    }
}

#[doc(hidden)]
pub fn run_attack<A: QueryAttack>(
    config: String,
    questions: Vec<Question>,
) -> std::result::Result<Vec<Option<String>>, wit::PluginError> {
    let config: A::Config = parse_config(&config)?;
    A::prompts(config, &questions).map_err(PluginError::into)
}

/// Export a type implementing [`QueryAttack`] as this component's query attack.
#[macro_export]
macro_rules! export_query_attack {
    ($ty:ty) => {
        #[doc(hidden)]
        struct __LetheQueryAttackExport;

        impl $crate::__private::query_attack_world::exports::lethe::plugin::query_attack::Guest
            for __LetheQueryAttackExport
        {
            fn describe() -> $crate::__private::query_attack_world::exports::lethe::plugin::query_attack::AttackManifest {
                $crate::__private::attack_manifest::<$ty>()
            }

            fn prompts(
                config: ::std::string::String,
                questions: ::std::vec::Vec<$crate::attack::Question>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<::std::option::Option<::std::string::String>>,
                $crate::__private::method_world::lethe::plugin::types::PluginError,
            > {
                $crate::__private::run_attack::<$ty>(config, questions)
            }
        }

        // Native builds (unit tests) export nothing: the component ABI names only exist in wasm.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::query_attack_world::export_query_attack_world!(__LetheQueryAttackExport with_types_in $crate::__private::query_attack_world);
    };
}
