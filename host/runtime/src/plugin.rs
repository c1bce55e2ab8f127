//! Loading a plugin (inspect → compile → describe → check) and calling it, each call in a
//! fresh store so that a trap never poisons the next call.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, Trap};

use lethe_manifest::{
    MetricOutput, MetricValue, ModelRole, ObservationKind, ObservedSplit, PluginKind,
    PluginManifest, Reading,
};

use crate::bindings::judge::exports::lethe::plugin::judge as wit_judge;
use crate::bindings::judge::{JudgePlugin, JudgePluginPre};
use crate::bindings::method::lethe::plugin::types as wit;
use crate::bindings::method::{MethodPlugin, MethodPluginPre};
use crate::bindings::metric::exports::lethe::plugin::metric as wit_metric;
use crate::bindings::metric::{MetricPlugin, MetricPluginPre};
use crate::bindings::query_attack::exports::lethe::plugin::query_attack as wit_attack;
use crate::bindings::query_attack::{QueryAttackPlugin, QueryAttackPluginPre};
use crate::inspect::exported_interface;
use crate::sandbox::{HostState, Limits, Sandbox};
use crate::state::TrainingState;
use crate::{PluginFailure, RuntimeError};

/// Loads plugins and runs them in the sandbox.
pub struct PluginHost {
    sandbox: Sandbox,
    method_linker: Linker<HostState>,
    metric_linker: Linker<HostState>,
    attack_linker: Linker<HostState>,
    judge_linker: Linker<HostState>,
}

enum Pre {
    Method(MethodPluginPre<HostState>),
    Metric(MetricPluginPre<HostState>),
    QueryAttack(QueryAttackPluginPre<HostState>),
    Judge(JudgePluginPre<HostState>),
}

/// A question put to a query attack (its reference answer withheld).
#[derive(Debug, Clone, PartialEq)]
pub struct AttackQuestion {
    /// The example's id.
    pub id: String,
    /// Its split.
    pub split: String,
    /// Its group keys.
    pub groups: Vec<(String, String)>,
    /// The question.
    pub question: String,
    /// The prompt the host puts without an attack.
    pub clean_prompt: String,
    /// Other phrasings of the question.
    pub paraphrased: Vec<String>,
    /// Solved retain examples drawn for it.
    pub shots: Vec<Solved>,
}

/// A solved retain example shown to a query attack.
#[derive(Debug, Clone, PartialEq)]
pub struct Solved {
    /// The question.
    pub question: String,
    /// Its reference answer.
    pub answer: String,
    /// The prompt the host puts for it.
    pub prompt: String,
}

/// A question with the answers sampled from a model, for a judge.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledAnswers {
    /// The example's id.
    pub id: String,
    /// Its split.
    pub split: String,
    /// The question.
    pub question: String,
    /// The reference answer.
    pub answer: String,
    /// Key terms.
    pub terms: Vec<String>,
    /// The sampled answers.
    pub samples: Vec<String>,
}

/// The longest prompt a query attack may return, in bytes: far past any context a model here
/// has, short of what would cost the host real memory.
pub const MAX_PROMPT_BYTES: usize = 64 << 10;

/// A compiled, described and checked plugin, ready to be called.
pub struct Plugin {
    /// What the plugin says about itself (checked).
    pub manifest: PluginManifest,
    /// sha256 of the component's bytes, lowercase hex.
    pub sha256: String,
    /// Where it came from ("builtin" or a file path).
    pub source: String,
    pre: Pre,
}

impl Plugin {
    /// `name@version`.
    pub fn label(&self) -> String {
        self.manifest.label()
    }
}

impl wit::Host for HostState {}

impl crate::bindings::method::lethe::plugin::host::Host for HostState {
    fn log(
        &mut self,
        level: crate::bindings::method::lethe::plugin::host::Level,
        message: String,
    ) -> wasmtime::Result<()> {
        use crate::bindings::method::lethe::plugin::host::Level;
        self.touch()?;
        let message: String = message.chars().take(4096).collect();
        // A plugin that logs without end would fill the terminal and the log files.
        self.log_bytes = self.log_bytes.saturating_add(message.len());
        if self.log_bytes > self.sandbox_limits.max_log_bytes {
            return Err(wasmtime::format_err!(
                "plugin logged more than {} KiB in one call (the host's limit)",
                self.sandbox_limits.max_log_bytes >> 10
            ));
        }
        match level {
            Level::Debug => debug!(plugin = %self.plugin, "{message}"),
            Level::Info => info!(plugin = %self.plugin, "{message}"),
            Level::Warn => warn!(plugin = %self.plugin, "{message}"),
        }
        Ok(())
    }
}

/// sha256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl PluginHost {
    /// A host whose calls run under `limits`.
    pub fn new(limits: Limits) -> Result<Self, RuntimeError> {
        let host_err = |e: String| RuntimeError::Host {
            plugin: "(none)".into(),
            reason: e,
        };
        let sandbox = Sandbox::new(limits).map_err(host_err)?;
        let mut method_linker = Linker::new(&sandbox.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut method_linker)
            .map_err(|e| host_err(e.to_string()))?;
        MethodPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut method_linker, |s| s)
            .map_err(|e| host_err(e.to_string()))?;
        let mut metric_linker = Linker::new(&sandbox.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut metric_linker)
            .map_err(|e| host_err(e.to_string()))?;
        MetricPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut metric_linker, |s| s)
            .map_err(|e| host_err(e.to_string()))?;
        let mut attack_linker = Linker::new(&sandbox.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut attack_linker)
            .map_err(|e| host_err(e.to_string()))?;
        QueryAttackPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut attack_linker,
            |s| s,
        )
        .map_err(|e| host_err(e.to_string()))?;
        let mut judge_linker = Linker::new(&sandbox.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut judge_linker)
            .map_err(|e| host_err(e.to_string()))?;
        JudgePlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut judge_linker, |s| s)
            .map_err(|e| host_err(e.to_string()))?;
        Ok(Self {
            sandbox,
            method_linker,
            metric_linker,
            attack_linker,
            judge_linker,
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        self.sandbox.limits()
    }

    /// Inspect, compile, describe and check a component. `source` names it in messages.
    pub fn load(&self, source: &str, bytes: &[u8]) -> Result<Plugin, RuntimeError> {
        let exported = exported_interface(source, bytes)?;
        let malformed = |reason: String| RuntimeError::Malformed {
            plugin: source.to_owned(),
            reason,
        };
        let component =
            Component::new(&self.sandbox.engine, bytes).map_err(|e| malformed(format!("{e:#}")))?;
        let link_err = |e: wasmtime::Error| {
            malformed(format!(
                "it imports something this host does not provide: {e:#}"
            ))
        };
        let pre = match exported.kind {
            PluginKind::Method => Pre::Method(
                MethodPluginPre::new(
                    self.method_linker
                        .instantiate_pre(&component)
                        .map_err(link_err)?,
                )
                .map_err(link_err)?,
            ),
            PluginKind::Metric => Pre::Metric(
                MetricPluginPre::new(
                    self.metric_linker
                        .instantiate_pre(&component)
                        .map_err(link_err)?,
                )
                .map_err(link_err)?,
            ),
            PluginKind::QueryAttack => Pre::QueryAttack(
                QueryAttackPluginPre::new(
                    self.attack_linker
                        .instantiate_pre(&component)
                        .map_err(link_err)?,
                )
                .map_err(link_err)?,
            ),
            PluginKind::Judge => Pre::Judge(
                JudgePluginPre::new(
                    self.judge_linker
                        .instantiate_pre(&component)
                        .map_err(link_err)?,
                )
                .map_err(link_err)?,
            ),
        };
        let mut store = self.store(source, 0, None)?;
        let manifest = match &pre {
            Pre::Method(p) => {
                let inst = p
                    .instantiate(&mut store)
                    .map_err(|e| trap(source, "instantiate", &e, &store))?;
                let raw = inst
                    .lethe_plugin_method()
                    .call_describe(&mut store)
                    .map_err(|e| trap(source, "describe", &e, &store))?;
                convert_manifest(source, raw)?
            }
            Pre::Metric(p) => {
                let inst = p
                    .instantiate(&mut store)
                    .map_err(|e| trap(source, "instantiate", &e, &store))?;
                let raw = inst
                    .lethe_plugin_metric()
                    .call_describe(&mut store)
                    .map_err(|e| trap(source, "describe", &e, &store))?;
                convert_manifest(source, raw)?
            }
            Pre::QueryAttack(p) => {
                let inst = p
                    .instantiate(&mut store)
                    .map_err(|e| trap(source, "instantiate", &e, &store))?;
                let m = inst
                    .lethe_plugin_query_attack()
                    .call_describe(&mut store)
                    .map_err(|e| trap(source, "describe", &e, &store))?;
                PluginManifest {
                    shots: m.shots,
                    ..bare_manifest(
                        source,
                        PluginKind::QueryAttack,
                        [m.name, m.version, m.api_version, m.summary],
                        &m.config_schema,
                    )?
                }
            }
            Pre::Judge(p) => {
                let inst = p
                    .instantiate(&mut store)
                    .map_err(|e| trap(source, "instantiate", &e, &store))?;
                let m = inst
                    .lethe_plugin_judge()
                    .call_describe(&mut store)
                    .map_err(|e| trap(source, "describe", &e, &store))?;
                bare_manifest(
                    source,
                    PluginKind::Judge,
                    [m.name, m.version, m.api_version, m.summary],
                    &m.config_schema,
                )?
            }
        };
        check_manifest(source, &manifest, exported.kind, &exported.api_version)?;
        Ok(Plugin {
            manifest,
            sha256: sha256_hex(bytes),
            source: source.to_owned(),
            pre,
        })
    }

    fn store(
        &self,
        label: &str,
        seed: u64,
        training: Option<TrainingState>,
    ) -> Result<Store<HostState>, RuntimeError> {
        self.sandbox
            .store(label, seed, training)
            .map_err(|reason| RuntimeError::Host {
                plugin: label.to_owned(),
                reason,
            })
    }

    /// Check a configuration against the plugin's schema; `Ok` means the plugin may run.
    pub fn validate_config(
        &self,
        plugin: &Plugin,
        config: &serde_json::Value,
    ) -> Result<(), RuntimeError> {
        validate_config(&plugin.label(), &plugin.manifest.config_schema, config)
    }

    /// Run a method's `unlearn` over a training state. Returns the state (with the unlearned
    /// model) on success.
    pub fn unlearn(
        &self,
        plugin: &Plugin,
        config: &serde_json::Value,
        state: TrainingState,
        seed: u64,
    ) -> Result<TrainingState, RuntimeError> {
        let label = plugin.label();
        self.validate_config(plugin, config)?;
        let Pre::Method(pre) = &plugin.pre else {
            return Err(not_a(plugin, "a method"));
        };
        let budget = crate::training::budget(&state);
        let mut store = self.store(&label, seed, Some(state))?;
        let inst = pre
            .instantiate(&mut store)
            .map_err(|e| trap(&label, "instantiate", &e, &store))?;
        let result =
            inst.lethe_plugin_method()
                .call_unlearn(&mut store, &config.to_string(), &budget);
        returned(&label, "unlearn", result, &store)?;
        let calls = store.data().host_calls;
        let denials = std::mem::take(&mut store.data_mut().denials);
        let mut state = store
            .data_mut()
            .training
            .take()
            .ok_or_else(|| RuntimeError::Host {
                plugin: label,
                reason: "training state lost".into(),
            })?;
        state.host_calls = calls;
        state.denials = denials;
        Ok(state)
    }

    /// Run a metric's `score` over observations.
    pub fn score(
        &self,
        plugin: &Plugin,
        config: &serde_json::Value,
        observed: &[ObservedSplit],
        seed: u64,
    ) -> Result<Vec<MetricValue>, RuntimeError> {
        let label = plugin.label();
        self.validate_config(plugin, config)?;
        let Pre::Metric(pre) = &plugin.pre else {
            return Err(not_a(plugin, "a metric"));
        };
        let mut store = self.store(&label, seed, None)?;
        let inst = pre
            .instantiate(&mut store)
            .map_err(|e| trap(&label, "instantiate", &e, &store))?;
        // What it may return values for: the splits it was given and their examples.
        let given: BTreeMap<&str, BTreeSet<&str>> =
            observed.iter().fold(BTreeMap::new(), |mut m, s| {
                m.entry(s.split.as_str())
                    .or_insert_with(BTreeSet::new)
                    .extend(s.examples.iter().map(|e| e.id.as_str()));
                m
            });
        let wit_observed: Vec<wit_metric::ObservedSplit> =
            observed.iter().map(to_wit_split).collect();
        let result =
            inst.lethe_plugin_metric()
                .call_score(&mut store, &config.to_string(), &wit_observed);
        let values = returned(&label, "score", result, &store)?;
        let mut out = Vec::with_capacity(values.len());
        let mut seen: BTreeSet<(String, String, Option<String>)> = BTreeSet::new();
        for v in values {
            let at = match &v.example {
                Some(e) => format!("output '{}' on split '{}', example '{e}'", v.name, v.split),
                None => format!("output '{}' on split '{}'", v.name, v.split),
            };
            let problem = if !plugin.manifest.outputs.iter().any(|o| o.name == v.name) {
                Some(format!(
                    "returned '{}', which its manifest does not declare",
                    v.name
                ))
            } else if !v.value.is_finite() {
                // A NaN or an infinity would be averaged into every table it reaches.
                Some(format!(
                    "returned a non-finite value ({}) for {at}",
                    v.value
                ))
            } else if !given.contains_key(v.split.as_str()) {
                Some(format!(
                    "returned a value for {at}, a split it was not given"
                ))
            } else if v
                .example
                .as_deref()
                .is_some_and(|e| !given[v.split.as_str()].contains(e))
            {
                Some(format!(
                    "returned a value for {at}, an example it was not given"
                ))
            } else if !seen.insert((v.name.clone(), v.split.clone(), v.example.clone())) {
                Some(format!("returned two values for {at}"))
            } else {
                None
            };
            if let Some(reason) = problem {
                return Err(bad_output(&label, "score", reason));
            }
            out.push(MetricValue {
                name: v.name,
                split: v.split,
                example: v.example,
                value: v.value,
            });
        }
        Ok(out)
    }
}

impl PluginHost {
    /// Ask a query attack for the prompt of each question, in order (`None`: the attack leaves
    /// that question out).
    pub fn prompts(
        &self,
        plugin: &Plugin,
        config: &serde_json::Value,
        questions: &[AttackQuestion],
        seed: u64,
    ) -> Result<Vec<Option<String>>, RuntimeError> {
        let label = plugin.label();
        self.validate_config(plugin, config)?;
        let Pre::QueryAttack(pre) = &plugin.pre else {
            return Err(not_a(plugin, "a query attack"));
        };
        let mut store = self.store(&label, seed, None)?;
        let inst = pre
            .instantiate(&mut store)
            .map_err(|e| trap(&label, "instantiate", &e, &store))?;
        let wit_questions: Vec<wit_attack::Question> = questions
            .iter()
            .map(|q| wit_attack::Question {
                id: q.id.clone(),
                split: q.split.clone(),
                groups: q.groups.clone(),
                question: q.question.clone(),
                clean_prompt: q.clean_prompt.clone(),
                paraphrased: q.paraphrased.clone(),
                shots: q
                    .shots
                    .iter()
                    .map(|s| wit_attack::Solved {
                        question: s.question.clone(),
                        answer: s.answer.clone(),
                        prompt: s.prompt.clone(),
                    })
                    .collect(),
            })
            .collect();
        let result = inst.lethe_plugin_query_attack().call_prompts(
            &mut store,
            &config.to_string(),
            &wit_questions,
        );
        let prompts = returned(&label, "prompts", result, &store)?;
        if prompts.len() != questions.len() {
            return Err(bad_output(
                &label,
                "prompts",
                format!(
                    "returned {} prompts for {} questions",
                    prompts.len(),
                    questions.len()
                ),
            ));
        }
        // A prompt the model's context cannot hold only costs the host time and memory.
        for (q, p) in questions.iter().zip(&prompts) {
            if let Some(p) = p
                && p.len() > MAX_PROMPT_BYTES
            {
                return Err(bad_output(
                    &label,
                    "prompts",
                    format!(
                        "returned a prompt of {} KiB for question '{}' (split '{}'); the host \
                         takes at most {} KiB",
                        p.len() >> 10,
                        q.id,
                        q.split,
                        MAX_PROMPT_BYTES >> 10
                    ),
                ));
            }
        }
        Ok(prompts)
    }

    /// Ask a judge which samples of each question leak its answer (`None`: it cannot judge
    /// that question).
    pub fn judge(
        &self,
        plugin: &Plugin,
        config: &serde_json::Value,
        questions: &[SampledAnswers],
        seed: u64,
    ) -> Result<Vec<Option<Vec<bool>>>, RuntimeError> {
        let label = plugin.label();
        self.validate_config(plugin, config)?;
        let Pre::Judge(pre) = &plugin.pre else {
            return Err(not_a(plugin, "a judge"));
        };
        let mut store = self.store(&label, seed, None)?;
        let inst = pre
            .instantiate(&mut store)
            .map_err(|e| trap(&label, "instantiate", &e, &store))?;
        let wit_questions: Vec<wit_judge::Sampled> = questions
            .iter()
            .map(|q| wit_judge::Sampled {
                id: q.id.clone(),
                split: q.split.clone(),
                question: q.question.clone(),
                answer: q.answer.clone(),
                terms: q.terms.clone(),
                samples: q.samples.clone(),
            })
            .collect();
        let result =
            inst.lethe_plugin_judge()
                .call_judge(&mut store, &config.to_string(), &wit_questions);
        let verdicts = returned(&label, "judge", result, &store)?;
        if verdicts.len() != questions.len() {
            return Err(bad_output(
                &label,
                "judge",
                format!(
                    "returned {} verdicts for {} questions",
                    verdicts.len(),
                    questions.len()
                ),
            ));
        }
        for (q, v) in questions.iter().zip(&verdicts) {
            if let Some(v) = v
                && v.len() != q.samples.len()
            {
                return Err(bad_output(
                    &label,
                    "judge",
                    format!(
                        "judged {} samples of question '{}', which has {}",
                        v.len(),
                        q.id,
                        q.samples.len()
                    ),
                ));
            }
        }
        Ok(verdicts)
    }
}

/// The error for calling `plugin` as something it is not ("a method", "a judge", …).
fn not_a(plugin: &Plugin, what: &str) -> RuntimeError {
    RuntimeError::Manifest {
        plugin: plugin.label(),
        reason: format!("it is a {}, not {what}", plugin.manifest.kind),
    }
}

/// The value of a guest call, or the trap or the plugin's own error, named.
fn returned<T>(
    label: &str,
    call: &str,
    result: wasmtime::Result<Result<T, wit::PluginError>>,
    store: &Store<HostState>,
) -> Result<T, RuntimeError> {
    match result {
        Err(e) => Err(trap(label, call, &e, store)),
        Ok(Err(e)) => Err(RuntimeError::Plugin {
            plugin: label.to_owned(),
            call: call.to_owned(),
            error: PluginFailure::from(e),
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

/// A value the plugin returned that does not fit what it was asked.
fn bad_output(label: &str, call: &str, reason: String) -> RuntimeError {
    RuntimeError::Plugin {
        plugin: label.to_owned(),
        call: call.to_owned(),
        error: PluginFailure::InvalidInput(reason),
    }
}

/// Turn a wasmtime error from a guest call into a trap naming the plugin and what happened.
fn trap(plugin: &str, call: &str, e: &wasmtime::Error, store: &Store<HostState>) -> RuntimeError {
    let state = store.data();
    let mut reason = if state.timed_out {
        format!(
            "timed out: no progress for {:?} (a method's time between training steps, or a \
             call's, host work for it included; --plugin-timeout)",
            state.sandbox_limits.timeout
        )
    } else {
        match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => format!(
                "fuel exhausted: it used more than {} units of compute",
                state.sandbox_limits.fuel
            ),
            Some(Trap::StackOverflow) => "stack overflow (call stack exhausted)".to_owned(),
            Some(t) => t.to_string(),
            None => {
                let text = format!("{e:#}");
                if text.contains("forcing trap when growing memory") {
                    format!(
                        "memory limit of {} MiB exceeded",
                        state.sandbox_limits.memory_bytes >> 20
                    )
                } else {
                    // A host import's own error (a limit it hit): its message, not the wasm
                    // backtrace wrapped around it.
                    e.root_cause().to_string()
                }
            }
        }
    };
    let stderr = state.stderr_text();
    if !stderr.is_empty() {
        reason.push_str(&format!("; plugin stderr: {stderr}"));
    }
    RuntimeError::Trap {
        plugin: plugin.to_owned(),
        call: call.to_owned(),
        reason,
    }
}

fn validate_config(
    label: &str,
    schema: &serde_json::Value,
    config: &serde_json::Value,
) -> Result<(), RuntimeError> {
    let validator = jsonschema::validator_for(schema).map_err(|e| RuntimeError::Manifest {
        plugin: label.to_owned(),
        reason: format!("its config schema is not a valid JSON Schema: {e}"),
    })?;
    let problems: Vec<String> = validator
        .iter_errors(config)
        .map(|e| {
            let path = e.instance_path.to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("at {path}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Config {
            plugin: label.to_owned(),
            reason: problems.join("; "),
        })
    }
}

fn parse_schema(source: &str, schema: &str) -> Result<serde_json::Value, RuntimeError> {
    serde_json::from_str(schema).map_err(|e| RuntimeError::Manifest {
        plugin: source.to_owned(),
        reason: format!("config-schema is not JSON: {e}"),
    })
}

/// The manifest of a kind that declares only the common fields (query attacks, judges).
fn bare_manifest(
    source: &str,
    kind: PluginKind,
    [name, version, api_version, summary]: [String; 4],
    schema: &str,
) -> Result<PluginManifest, RuntimeError> {
    Ok(PluginManifest {
        name,
        version,
        kind,
        api_version,
        summary,
        config_schema: parse_schema(source, schema)?,
        splits: Vec::new(),
        needs_reference: false,
        observations: Vec::new(),
        models: Vec::new(),
        outputs: Vec::new(),
        shots: 0,
    })
}

fn convert_manifest(source: &str, m: wit::Manifest) -> Result<PluginManifest, RuntimeError> {
    let schema = parse_schema(source, &m.config_schema)?;
    Ok(PluginManifest {
        name: m.name,
        version: m.version,
        kind: match m.kind {
            wit::PluginKind::Method => PluginKind::Method,
            wit::PluginKind::Metric => PluginKind::Metric,
        },
        api_version: m.api_version,
        summary: m.summary,
        config_schema: schema,
        splits: m.splits,
        needs_reference: m.needs_reference,
        observations: m
            .observations
            .into_iter()
            .map(observation_from_wit)
            .collect(),
        models: m.models.into_iter().map(role_from_wit).collect(),
        outputs: m
            .outputs
            .into_iter()
            .map(|o| MetricOutput {
                name: o.name,
                reading: match o.reading {
                    wit::Reading::HigherKnows => Reading::HigherKnows,
                    wit::Reading::LowerKnows => Reading::LowerKnows,
                    wit::Reading::HigherBetter => Reading::HigherBetter,
                    wit::Reading::LowerBetter => Reading::LowerBetter,
                },
                summary: o.summary,
            })
            .collect(),
        shots: 0,
    })
}

fn check_manifest(
    source: &str,
    m: &PluginManifest,
    kind: PluginKind,
    api: &str,
) -> Result<(), RuntimeError> {
    let bad = |reason: String| {
        Err(RuntimeError::Manifest {
            plugin: format!("{source} ({})", m.label()),
            reason,
        })
    };
    let name_ok = !m.name.is_empty()
        && m.name.len() <= 64
        && m.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !m.name.starts_with('-');
    if !name_ok {
        return bad(format!(
            "name '{}' must be 1-64 lowercase letters, digits or '-'",
            m.name
        ));
    }
    let parts: Vec<&str> = m.version.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return bad(format!("version '{}' is not MAJOR.MINOR.PATCH", m.version));
    }
    if m.kind != kind {
        return bad(format!(
            "it says it is a {} but exports the {kind} interface",
            m.kind
        ));
    }
    if m.api_version != api {
        return bad(format!(
            "it says api-version {} but exports lethe:plugin@{api}",
            m.api_version
        ));
    }
    if !m.config_schema.is_object() && !m.config_schema.is_boolean() {
        return bad("config-schema must be a JSON object".into());
    }
    if let Err(e) = jsonschema::validator_for(&m.config_schema) {
        return bad(format!("config-schema is not a valid JSON Schema: {e}"));
    }
    match kind {
        PluginKind::Method => {
            if m.splits.is_empty() {
                return bad("a method must declare the splits it reads".into());
            }
            if let Some(s) = m
                .splits
                .iter()
                .find(|s| !["forget", "retain", "idk"].contains(&s.as_str()))
            {
                return bad(format!(
                    "it declares split '{s}', but methods may read only forget, retain and idk"
                ));
            }
        }
        PluginKind::Metric => {
            if m.outputs.is_empty() {
                return bad("a metric must declare at least one output".into());
            }
            let mut names: Vec<&str> = m.outputs.iter().map(|o| o.name.as_str()).collect();
            names.sort_unstable();
            if names.windows(2).any(|w| w[0] == w[1]) {
                return bad("output names must be unique".into());
            }
            if m.models.contains(&ModelRole::Subject) {
                return bad("models lists references; the subject is always included".into());
            }
        }
        PluginKind::QueryAttack => {
            // The shots are copied into every question of a call; beyond this a prompt
            // outgrows any context the models here have.
            const MAX_SHOTS: u32 = 64;
            if m.shots > MAX_SHOTS {
                return bad(format!(
                    "it asks for {} shots per question; at most {MAX_SHOTS}",
                    m.shots
                ));
            }
        }
        PluginKind::Judge => {}
    }
    Ok(())
}

fn observation_from_wit(o: wit::Observation) -> ObservationKind {
    match o {
        wit::Observation::GeneratedAnswer => ObservationKind::GeneratedAnswer,
        wit::Observation::AnswerLogprobs => ObservationKind::AnswerLogprobs,
        wit::Observation::AnswerArgmaxMatch => ObservationKind::AnswerArgmaxMatch,
        wit::Observation::AnswerLogprobMoments => ObservationKind::AnswerLogprobMoments,
        wit::Observation::ParaphrasedAnswerLogprobs => ObservationKind::ParaphrasedAnswerLogprobs,
        wit::Observation::PerturbedAnswerLogprobs => ObservationKind::PerturbedAnswerLogprobs,
        wit::Observation::OptionLogprobs => ObservationKind::OptionLogprobs,
    }
}

fn role_from_wit(r: wit::ModelRole) -> ModelRole {
    match r {
        wit::ModelRole::Subject => ModelRole::Subject,
        wit::ModelRole::Target => ModelRole::Target,
        wit::ModelRole::Oracle => ModelRole::Oracle,
        wit::ModelRole::Base => ModelRole::Base,
    }
}

fn role_to_wit(r: ModelRole) -> wit::ModelRole {
    match r {
        ModelRole::Subject => wit::ModelRole::Subject,
        ModelRole::Target => wit::ModelRole::Target,
        ModelRole::Oracle => wit::ModelRole::Oracle,
        ModelRole::Base => wit::ModelRole::Base,
    }
}

fn to_wit_split(s: &ObservedSplit) -> wit_metric::ObservedSplit {
    wit_metric::ObservedSplit {
        model: role_to_wit(s.model),
        split: s.split.clone(),
        examples: s
            .examples
            .iter()
            .map(|e| wit_metric::Example {
                id: e.id.clone(),
                groups: e
                    .groups
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                question: e.question.clone(),
                answer: e.answer.clone(),
                terms: e.terms.clone(),
                options: e.options.clone(),
                correct_option: e.correct_option,
                generated: e.generated.clone(),
                answer_logprobs: e.answer_logprobs.clone(),
                answer_argmax_match: e.answer_argmax_match.clone(),
                answer_logprob_mean: e.answer_logprob_mean.clone(),
                answer_logprob_std: e.answer_logprob_std.clone(),
                paraphrased_logprobs: e.paraphrased_logprobs.clone(),
                perturbed_logprobs: e.perturbed_logprobs.clone(),
                option_logprobs: e.option_logprobs.clone(),
            })
            .collect(),
    }
}
