//! The sandbox: one engine with fuel and epoch interruption, and a fresh store per call whose
//! WASI context grants nothing (no files, network, environment or clock; seeded randomness).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use crate::state::TrainingState;

/// How often the epoch advances; the unit of the hang guard.
const TICK: Duration = Duration::from_millis(10);

/// The resources a plugin call may use.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) for one call; deterministic.
    pub fuel: u64,
    /// Linear memory a plugin may grow to, in bytes.
    pub memory_bytes: usize,
    /// Time a plugin may go without progress, the host work it asks for (forward passes,
    /// tensor operations) included: for a method, from the call's start or its last training
    /// step to the next; for the other kinds, the whole call. A method that loops on host
    /// primitives without stepping is stopped by it.
    pub timeout: Duration,
    /// Elements of the largest tensor a plugin may make the host create.
    pub max_tensor_elements: usize,
    /// Tensor and batch handles a plugin may hold at once.
    pub max_live_handles: usize,
    /// Bytes of tensors a plugin may hold at once: those it holds handles to, and the tokens
    /// and cached forward outputs of its batches.
    pub max_live_bytes: usize,
    /// Bytes of log messages one call may write.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 20_000_000_000,
            memory_bytes: 512 << 20,
            timeout: Duration::from_secs(60),
            max_tensor_elements: 1 << 26,
            max_live_handles: 1 << 20,
            max_live_bytes: 4 << 30,
            max_log_bytes: 1 << 20,
        }
    }
}

/// Advances an engine's epoch until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The engine every plugin runs on, with its limits.
pub struct Sandbox {
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
    _ticker: Ticker,
}

impl Sandbox {
    /// A sandbox with the given limits.
    pub fn new(limits: Limits) -> Result<Self, String> {
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(1 << 20);
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("lethe-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| e.to_string())?
        };
        Ok(Self {
            engine,
            limits,
            _ticker: Ticker {
                stop,
                handle: Some(handle),
            },
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A fresh store for one call of `plugin`, with fuel, memory limits and the hang guard.
    pub(crate) fn store(
        &self,
        plugin: &str,
        seed: u64,
        training: Option<TrainingState>,
    ) -> Result<Store<HostState>, String> {
        let stderr = MemoryOutputPipe::new(16 << 10);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(SeededRng(ChaCha8Rng::seed_from_u64(seed)))
            .insecure_random(SeededRng(ChaCha8Rng::seed_from_u64(
                seed ^ 0x9e37_79b9_7f4a_7c15,
            )))
            .insecure_random_seed(u128::from(seed));
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            plugin: plugin.to_owned(),
            stderr,
            progress_at: Instant::now(),
            timed_out: false,
            live_handles: 0,
            live_bytes: 0,
            log_bytes: 0,
            host_calls: 0,
            denials: Vec::new(),
            sandbox_limits: self.limits.clone(),
            training,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| e.to_string())?;
        store.set_epoch_deadline(1);
        // While the guest runs, every tick checks the time since its last progress; while the
        // host works for it, `touch` does at every host call.
        store.epoch_deadline_callback(|mut ctx| {
            ctx.data_mut().check_progress()?;
            Ok(UpdateDeadline::Continue(1))
        });
        Ok(store)
    }
}

/// Everything a store holds for one plugin call.
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    limits: StoreLimits,
    pub(crate) plugin: String,
    pub(crate) stderr: MemoryOutputPipe,
    /// When the plugin last made progress (the call's start, or a method's last step).
    progress_at: Instant,
    pub(crate) timed_out: bool,
    pub(crate) live_handles: usize,
    /// Bytes of the tensors and batches it holds (see [`Limits::max_live_bytes`]).
    pub(crate) live_bytes: usize,
    /// Bytes of log messages written in this call.
    pub(crate) log_bytes: usize,
    /// Guest→host calls made so far (for the boundary benchmark).
    pub(crate) host_calls: u64,
    /// Requests the host denied (a split not declared, a step past the budget …), in order:
    /// a plugin may swallow the error, but a conformance check still sees the attempt.
    pub(crate) denials: Vec<String>,
    pub(crate) sandbox_limits: Limits,
    pub(crate) training: Option<TrainingState>,
}

impl HostState {
    /// Called by every host import: counts the call and stops a plugin past its timeout.
    pub(crate) fn touch(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        self.check_progress()
    }

    /// Note `e` if it is a denial, and hand it back (for the import to return).
    pub(crate) fn denial(
        &mut self,
        e: crate::bindings::method::lethe::plugin::types::PluginError,
    ) -> crate::bindings::method::lethe::plugin::types::PluginError {
        use crate::bindings::method::lethe::plugin::types::PluginError as E;
        if let E::Denied(m) = &e {
            self.denials.push(m.clone());
        }
        e
    }

    /// A method's training step: progress, so its timeout starts again.
    pub(crate) fn progressed(&mut self) {
        self.progress_at = Instant::now();
    }

    /// Trap once the time since the last progress is past the timeout.
    fn check_progress(&mut self) -> wasmtime::Result<()> {
        if self.progress_at.elapsed() > self.sandbox_limits.timeout {
            self.timed_out = true;
            return Err(wasmtime::format_err!(
                "no progress for {:?}",
                self.sandbox_limits.timeout
            ));
        }
        Ok(())
    }

    /// What the plugin wrote to stderr (a panic message, typically), trimmed.
    pub(crate) fn stderr_text(&self) -> String {
        let raw = String::from_utf8_lossy(&self.stderr.contents()).into_owned();
        // One line for the error message; Rust's backtrace hint is noise here.
        let lines: Vec<&str> = raw
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        let joined = lines.join(" ");
        match joined.char_indices().nth(2000) {
            Some((i, _)) => format!("{}…", &joined[..i]),
            None => joined,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock that never moves: plugins get no time source.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The run's seeded generator, served to `wasi:random` so plugins are deterministic.
struct SeededRng(ChaCha8Rng);

impl rand_core_wasi::TryRng for SeededRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(rand::RngCore::next_u32(&mut self.0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(rand::RngCore::next_u64(&mut self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rand::RngCore::fill_bytes(&mut self.0, dst);
        Ok(())
    }
}
