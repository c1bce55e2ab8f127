//! What a job makes of its suite before it runs: the name its results carry, and for
//! sequential unlearning the forget split cut into rounds.

use lethe_suites::{QaRecord, Records, SplitRole, Suite};

/// The suite a job runs on: the whole suite (renamed when the job names it), and for a
/// sequential job the suites of rounds 1 to its own, each holding only that round's part of
/// the forget split.
pub struct JobSuites {
    /// The whole suite: every model is learned on it.
    pub whole: Suite,
    /// Rounds 1..=k of a sequential job (empty otherwise); the last is the one measured.
    pub rounds: Vec<Suite>,
}

/// The suite `job` runs on, from its source's `suite`.
pub fn job_suites(mut suite: Suite, job: &crate::Job) -> Result<JobSuites, String> {
    if let Some(name) = &job.suite_name {
        suite.manifest.name.clone_from(name);
    }
    let rounds = match job.round {
        None => Vec::new(),
        Some(r) => (1..=r.round)
            .map(|k| round_of(&suite, k, r.of))
            .collect::<Result<_, _>>()?,
    };
    Ok(JobSuites {
        whole: suite,
        rounds,
    })
}

/// Round `round` (1-based) of `of`: the suite with the forget split cut owner by owner (the
/// first of the records' `patient` or `author` group keys, else the record), in suite order.
/// With fewer owners than rounds (a tiny suite) the split is cut question by question.
pub fn round_of(suite: &Suite, round: usize, of: usize) -> Result<Suite, String> {
    if round == 0 || round > of {
        return Err(format!("round {round} of {of} does not exist"));
    }
    let Some(at) = suite
        .splits
        .iter()
        .position(|s| s.role == SplitRole::Forget)
    else {
        return Err("the suite has no forget split to cut into rounds".into());
    };
    // A forget split of documents (MUSE's corpus) is cut document by document.
    if let Records::Text(docs) = &suite.splits[at].records {
        if docs.len() < of {
            return Err(format!(
                "{} forget documents cannot be split into {of} rounds",
                docs.len()
            ));
        }
        let per = docs.len().div_ceil(of);
        let mine: Vec<_> = docs
            .iter()
            .skip((round - 1) * per)
            .take(per)
            .cloned()
            .collect();
        if mine.is_empty() {
            return Err(format!("round {round} of {of} has no forget documents"));
        }
        let mut s = suite.clone();
        s.splits[at].records = Records::Text(mine);
        s.manifest.description = format!(
            "{} Round {round} of {of} of sequential unlearning.",
            s.manifest.description
        );
        return Ok(s);
    }
    let forget = suite.splits[at].questions();
    let owner_of = |r: &QaRecord| {
        ["patient", "author"]
            .iter()
            .find_map(|k| r.groups.get(*k).cloned())
            .unwrap_or_else(|| r.id.clone())
    };
    let mut owners: Vec<String> = Vec::new();
    for r in forget {
        let o = owner_of(r);
        if !owners.contains(&o) {
            owners.push(o);
        }
    }
    let by_question = owners.len() < of;
    if by_question {
        owners = forget.iter().map(|r| r.id.clone()).collect();
    }
    if owners.len() < of {
        return Err(format!(
            "{} forget examples cannot be split into {of} rounds",
            owners.len()
        ));
    }
    let per = owners.len().div_ceil(of);
    let mine = &owners[((round - 1) * per).min(owners.len())..(round * per).min(owners.len())];
    let owner = |r: &QaRecord| {
        if by_question {
            r.id.clone()
        } else {
            owner_of(r)
        }
    };
    let records: Vec<QaRecord> = forget
        .iter()
        .filter(|q| mine.contains(&owner(q)))
        .cloned()
        .collect();
    if records.is_empty() {
        return Err(format!("round {round} of {of} has no forget examples"));
    }
    let mut s = suite.clone();
    s.splits[at].records = Records::Qa(records);
    s.manifest.description = format!(
        "{} Round {round} of {of} of sequential unlearning.",
        s.manifest.description
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lethe_suites::generate::{AuthorsConfig, authors};

    use super::*;

    #[test]
    fn rounds_partition_the_forget_split_by_owner_in_order() {
        let suite = authors(&AuthorsConfig {
            forget_share: 0.3,
            ..AuthorsConfig::default()
        })
        .unwrap();
        let forget: Vec<String> = suite
            .splits_with(SplitRole::Forget)
            .flat_map(|s| s.questions().iter().map(|q| q.id.clone()))
            .collect();
        let parts: Vec<Vec<String>> = (1..=3)
            .map(|k| {
                round_of(&suite, k, 3)
                    .unwrap()
                    .splits_with(SplitRole::Forget)
                    .flat_map(|s| s.questions().iter().map(|q| q.id.clone()))
                    .collect()
            })
            .collect();
        // Together, in order, exactly the forget split; no author in two rounds.
        assert_eq!(parts.concat(), forget);
        let author = |id: &str| {
            suite
                .splits_with(SplitRole::Forget)
                .flat_map(|s| s.questions())
                .find(|q| q.id == id)
                .and_then(|q| q.groups.get("author").cloned())
                .unwrap()
        };
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            for x in &parts[a] {
                assert!(parts[b].iter().all(|y| author(x) != author(y)));
            }
        }
        // Other splits are untouched.
        let r2 = round_of(&suite, 2, 3).unwrap();
        for (s, t) in suite.splits.iter().zip(&r2.splits) {
            if s.role != SplitRole::Forget {
                assert_eq!(s.records, t.records);
            }
        }
        assert!(round_of(&suite, 0, 3).is_err());
        assert!(round_of(&suite, 4, 3).is_err());
    }

    #[test]
    fn a_forget_split_of_documents_is_cut_document_by_document() {
        let suite = lethe_suites::generate::news(&lethe_suites::generate::NewsConfig {
            forget_share: 0.15,
            ..lethe_suites::generate::NewsConfig::default()
        })
        .unwrap();
        let ids = |s: &Suite| -> Vec<String> {
            s.splits_with(SplitRole::Forget)
                .flat_map(|s| s.texts().iter().map(|t| t.id.clone()))
                .collect()
        };
        let parts: Vec<Vec<String>> = (1..=3)
            .map(|k| ids(&round_of(&suite, k, 3).unwrap()))
            .collect();
        assert!(parts.iter().all(|p| !p.is_empty()));
        assert_eq!(parts.concat(), ids(&suite));
        let one =
            lethe_suites::generate::news(&lethe_suites::generate::NewsConfig::tiny()).unwrap();
        let e = round_of(&one, 1, 3).unwrap_err();
        assert!(e.contains("cannot be split into 3 rounds"), "{e}");
    }
}
