//! Worker processes on one machine: each pending job runs in a process of its own (the same
//! `lethe exec --index I` a scheduler's array task runs), at most `workers` at once. A worker
//! that crashes takes only its job with it; the job's shard is then missing and runs again.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use lethe_pipeline::Reporter;

/// How a worker ended.
#[derive(Debug)]
pub struct WorkerEnd {
    /// The job's index in the plan.
    pub index: usize,
    /// Its exit status (`None` when it could not be started or waited for, with the error).
    pub status: Result<ExitStatus, String>,
}

/// Run `pending` jobs, at most `workers` processes at once, each started by `spawn(index)`.
/// Returns how each ended, in the order they finished.
pub fn run_workers(
    pending: &[usize],
    workers: usize,
    spawn: &dyn Fn(usize) -> std::io::Result<Child>,
    describe: &dyn Fn(usize) -> String,
    reporter: &dyn Reporter,
) -> Vec<WorkerEnd> {
    let workers = workers.max(1);
    let total = pending.len();
    let mut queue = pending.iter().copied();
    let mut running: Vec<(usize, usize, Child, Instant)> = Vec::new();
    let mut ended = Vec::new();
    let mut started = 0;
    loop {
        while running.len() < workers {
            let Some(index) = queue.next() else { break };
            reporter.job(started, total, &describe(index));
            match spawn(index) {
                Ok(child) => running.push((started, index, child, Instant::now())),
                Err(e) => ended.push(WorkerEnd {
                    index,
                    status: Err(format!("could not start a worker: {e}")),
                }),
            }
            started += 1;
        }
        if running.is_empty() {
            break;
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].2.try_wait() {
                Ok(Some(status)) => {
                    let (n, index, _, t0) = running.swap_remove(i);
                    let outcome = if status.success() {
                        "done".to_owned()
                    } else {
                        format!("worker failed ({status})")
                    };
                    reporter.job_done(n, total, &describe(index), t0.elapsed(), &outcome);
                    ended.push(WorkerEnd {
                        index,
                        status: Ok(status),
                    });
                }
                Ok(None) => i += 1,
                Err(e) => {
                    let (_, index, _, _) = running.swap_remove(i);
                    ended.push(WorkerEnd {
                        index,
                        status: Err(e.to_string()),
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ended
}
