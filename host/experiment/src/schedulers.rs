//! Handing a plan to an existing scheduler: a Slurm job array (one array task per job, then a
//! report step that depends on them all) or a Kubernetes Indexed Job. Each task runs
//! `lethe exec PLAN --out DIR --index I` and writes one shard; the report merges them.

use std::path::{Path, PathBuf};

/// What every scheduler's task runs.
#[derive(Debug, Clone)]
pub struct TaskCommand {
    /// The `lethe` binary as the tasks see it.
    pub lethe: PathBuf,
    /// The plan file as the tasks see it.
    pub plan: PathBuf,
    /// The output folder as the tasks see it (shared by all of them).
    pub out: PathBuf,
    /// Where the report goes.
    pub board: PathBuf,
    /// Extra options passed to every `lethe exec` (cache and plugin folders, limits).
    pub exec_args: Vec<String>,
    /// Jobs in the plan.
    pub jobs: usize,
}

/// Quote for a POSIX shell: single quotes, with embedded ones closed and escaped.
fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:@+,".contains(c))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn path(p: &Path) -> String {
    sh(&p.to_string_lossy())
}

impl TaskCommand {
    fn exec_line(&self, index: &str) -> String {
        let mut words = vec![
            path(&self.lethe),
            "exec".into(),
            path(&self.plan),
            "--out".into(),
            path(&self.out),
            "--index".into(),
            index.to_owned(),
        ];
        words.extend(self.exec_args.iter().map(|a| sh(a)));
        words.join(" ")
    }

    fn report_line(&self) -> String {
        format!(
            "{} report {} --out {}",
            path(&self.lethe),
            path(&self.out),
            path(&self.board)
        )
    }
}

/// Slurm resources of each array task.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// `--partition` (the cluster's default when `None`).
    pub partition: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: u32,
    /// `--mem`, e.g. "4G".
    pub mem: String,
    /// `--time`, e.g. "02:00:00".
    pub time: String,
    /// At most this many tasks at once (`--array=…%N`).
    pub max_parallel: Option<usize>,
    /// Job name prefix.
    pub name: String,
}

/// The files of a Slurm submission: `array.sbatch`, `report.sbatch` and `submit.sh`, which
/// submits the array and the report with `--dependency=afterok` on it and prints both ids.
pub fn slurm(cmd: &TaskCommand, opts: &SlurmOptions, logs: &Path) -> Vec<(&'static str, String)> {
    let mut common = String::new();
    if let Some(p) = &opts.partition {
        common.push_str(&format!("#SBATCH --partition={}\n", sh(p)));
    }
    common.push_str(&format!(
        "#SBATCH --cpus-per-task={}\n#SBATCH --mem={}\n#SBATCH --time={}\n",
        opts.cpus,
        sh(&opts.mem),
        sh(&opts.time)
    ));
    let throttle = opts
        .max_parallel
        .map(|n| format!("%{n}"))
        .unwrap_or_default();
    let last = cmd.jobs.saturating_sub(1);
    let array = format!(
        "#!/bin/bash\n\
         # Written by `lethe slurm`: one array task per job of the plan; each writes one shard.\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --array=0-{last}{throttle}\n\
         #SBATCH --output={logs}/%A_%a.out\n\
         {common}\
         set -euo pipefail\n\
         # A job's threads follow its CPUs; results do not depend on them.\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         exec {exec}\n",
        name = sh(&opts.name),
        logs = path(logs),
        exec = cmd.exec_line("\"$SLURM_ARRAY_TASK_ID\""),
    );
    let report = format!(
        "#!/bin/bash\n\
         # Written by `lethe slurm`: merge the array's shards into the leaderboard.\n\
         #SBATCH --job-name={name}-report\n\
         #SBATCH --output={logs}/%j-report.out\n\
         {common}\
         set -euo pipefail\n\
         exec {report}\n",
        name = sh(&opts.name),
        logs = path(logs),
        report = cmd.report_line(),
    );
    let submit = "#!/bin/bash\n\
         # Written by `lethe slurm`: submit the array, then the report once every task succeeded.\n\
         # A failed task makes the dependency unsatisfiable: Slurm then cancels the report\n\
         # (--kill-on-invalid-dep) rather than leave it pending; run `lethe exec` again for the\n\
         # failed indices (complete shards are skipped) and `lethe report`.\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")\"\n\
         array=$(sbatch --parsable array.sbatch)\n\
         array=${array%%;*}\n\
         report=$(sbatch --parsable --dependency=afterok:\"$array\" --kill-on-invalid-dep=yes report.sbatch)\n\
         echo \"array $array\"\n\
         echo \"report ${report%%;*}\"\n"
        .to_owned();
    vec![
        ("array.sbatch", array),
        ("report.sbatch", report),
        ("submit.sh", submit),
    ]
}

/// Kubernetes settings of the Indexed Job.
#[derive(Debug, Clone)]
pub struct K8sOptions {
    /// The container image holding `lethe`.
    pub image: String,
    /// A persistent volume claim mounted at `mount`, holding the plan, the output folder and
    /// the model cache.
    pub claim: Option<String>,
    /// Where the claim is mounted.
    pub mount: PathBuf,
    /// Pods at once.
    pub parallelism: usize,
    /// CPU request and limit of a pod, e.g. "2".
    pub cpu: String,
    /// Memory request and limit, e.g. "4Gi".
    pub memory: String,
    /// The Job's name (a DNS label).
    pub name: String,
}

/// Whole threads for a Kubernetes CPU quantity ("2", "1.5", "500m"), at least one.
fn cpu_threads(cpu: &str) -> usize {
    let cores = match cpu.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map(|m| m / 1000.0),
        None => cpu.parse::<f64>(),
    };
    cores.map_or(1, |c| c.ceil().max(1.0) as usize)
}

fn pod_spec(cmd_line: String, opts: &K8sOptions) -> serde_json::Value {
    let mut container = serde_json::json!({
        "name": "lethe",
        "image": opts.image,
        "command": ["/bin/sh", "-c", cmd_line],
        "resources": {
            "requests": {"cpu": opts.cpu, "memory": opts.memory},
            "limits": {"cpu": opts.cpu, "memory": opts.memory},
        },
    });
    let mut spec = serde_json::json!({
        "restartPolicy": "Never",
        "containers": [],
    });
    if let Some(claim) = &opts.claim {
        container["volumeMounts"] =
            serde_json::json!([{"name": "data", "mountPath": opts.mount.to_string_lossy()}]);
        spec["volumes"] =
            serde_json::json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    }
    spec["containers"] = serde_json::json!([container]);
    spec
}

/// An Indexed Job (one completion per plan job, `JOB_COMPLETION_INDEX` as the index; a failed
/// index is retried once on its own) and a report Job to apply once it has completed, as JSON
/// manifests (`kubectl apply -f` reads JSON).
pub fn k8s(cmd: &TaskCommand, opts: &K8sOptions) -> Vec<(&'static str, serde_json::Value)> {
    let job = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": opts.name, "labels": {"app.kubernetes.io/name": "lethe"}},
        "spec": {
            "completionMode": "Indexed",
            "completions": cmd.jobs,
            "parallelism": opts.parallelism.max(1),
            "backoffLimitPerIndex": 1,
            "maxFailedIndexes": cmd.jobs,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "lethe"}},
                "spec": pod_spec(
                    format!(
                        "export RAYON_NUM_THREADS={}; exec {}",
                        cpu_threads(&opts.cpu),
                        cmd.exec_line("\"$JOB_COMPLETION_INDEX\"")
                    ),
                    opts
                ),
            },
        },
    });
    let report = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": format!("{}-report", opts.name), "labels": {"app.kubernetes.io/name": "lethe"}},
        "spec": {
            "completions": 1,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "lethe"}},
                "spec": pod_spec(format!("exec {}", cmd.report_line()), opts),
            },
        },
    });
    vec![("job.json", job), ("report.json", report)]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cmd() -> TaskCommand {
        TaskCommand {
            lethe: "/opt/lethe bin/lethe".into(),
            plan: "/data/plan.jsonl".into(),
            out: "/data/out".into(),
            board: "/data/board".into(),
            exec_args: vec!["--cache-dir".into(), "/data/cache".into()],
            jobs: 9,
        }
    }

    #[test]
    fn the_slurm_array_has_one_task_per_job_and_the_report_waits_for_all() {
        let files = slurm(
            &cmd(),
            &SlurmOptions {
                partition: None,
                cpus: 2,
                mem: "4G".into(),
                time: "01:00:00".into(),
                max_parallel: Some(3),
                name: "lethe".into(),
            },
            Path::new("/data/out/slurm/logs"),
        );
        let array = &files[0].1;
        assert!(array.contains("#SBATCH --array=0-8%3\n"), "{array}");
        assert!(array.contains(
            "exec '/opt/lethe bin/lethe' exec /data/plan.jsonl --out /data/out --index \"$SLURM_ARRAY_TASK_ID\" --cache-dir /data/cache"
        ), "{array}");
        assert!(files[1].1.contains("report /data/out --out /data/board"));
        assert!(
            files[2]
                .1
                .contains("--dependency=afterok:\"$array\" --kill-on-invalid-dep=yes")
        );
    }

    #[test]
    fn the_indexed_job_counts_the_plan_and_reads_its_index() {
        let files = k8s(
            &cmd(),
            &K8sOptions {
                image: "lethe:0.1".into(),
                claim: Some("lethe-data".into()),
                mount: "/data".into(),
                parallelism: 4,
                cpu: "2".into(),
                memory: "4Gi".into(),
                name: "sweep".into(),
            },
        );
        let job = &files[0].1;
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], 9);
        let command = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
            .as_str()
            .unwrap();
        assert!(
            command.contains("--index \"$JOB_COMPLETION_INDEX\""),
            "{command}"
        );
        assert_eq!(
            job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "lethe-data"
        );
        assert!(
            command.starts_with("export RAYON_NUM_THREADS=2;"),
            "{command}"
        );
        assert_eq!(cpu_threads("500m"), 1);
        assert_eq!(cpu_threads("1.5"), 2);
        assert_eq!(cpu_threads("lots"), 1);
    }
}
