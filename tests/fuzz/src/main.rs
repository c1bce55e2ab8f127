//! `lethe-fuzz TARGET`: under `cargo afl fuzz`, runs TARGET in AFL++'s persistent mode; in an
//! ordinary build, feeds it each FILE given (a crash to replay) or standard input.
//! `lethe-fuzz seeds DIR` writes every target's seeds to `DIR/TARGET/`; `lethe-fuzz list`
//! prints the targets.

use std::process::ExitCode;

use lethe_fuzz::{Target, names};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lethe-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    match args {
        [list] if list == "list" => {
            for name in names() {
                println!("{name}");
            }
            Ok(())
        }
        [seeds, dir] if seeds == "seeds" => {
            for name in names() {
                let target = Target::new(name)?;
                let out = std::path::Path::new(dir).join(name);
                std::fs::create_dir_all(&out)?;
                for (file, bytes) in target.seeds()? {
                    std::fs::write(out.join(file), bytes)?;
                }
            }
            Ok(())
        }
        [name, files @ ..] => {
            let mut target = Target::new(name)?;
            fuzz_or_replay(&mut target, files)
        }
        [] => Err(format!(
            "usage: lethe-fuzz TARGET [FILE…] | seeds DIR | list (targets: {})",
            names().join(", ")
        )
        .into()),
    }
}

/// AFL++'s persistent loop over `target`. Panics caught inside a parser stay caught (no
/// abort-on-panic hook); one that escapes aborts, which AFL++ records as a crash.
#[cfg(fuzzing)]
fn fuzz_or_replay(
    target: &mut Target,
    _files: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    let target = std::sync::Mutex::new(target);
    afl::fuzz(false, |data: &[u8]| {
        if let Ok(mut t) = target.lock() {
            t.run(data);
        }
    });
    Ok(())
}

/// Each file in turn (standard input when none): a crash found by the fuzzer, replayed.
#[cfg(not(fuzzing))]
fn fuzz_or_replay(target: &mut Target, files: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    if files.is_empty() {
        let mut input = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut input)?;
        target.run(&input);
    }
    for file in files {
        target.run(&std::fs::read(file)?);
        eprintln!("{}: {file}: no crash", target.name());
    }
    Ok(())
}
