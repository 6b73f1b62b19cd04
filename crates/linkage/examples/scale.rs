//! Whole-pipeline run on N generated people (about 30% with an altered copy), for measuring
//! speed and memory at scale: `cargo run --release -p inkingi-linkage --example scale -- 1000000`.
//! Prints the time of each phase and the pairwise F1; measure peak memory with
//! `/usr/bin/time -v`.

use std::time::Instant;

use inkingi_linkage::config::FieldKind;
use inkingi_linkage::dataset::{date, MISSING};
use inkingi_linkage::evaluate::{Evaluation, UNKNOWN};
use inkingi_linkage::index::LinkIndex;
use inkingi_linkage::{run, Dataset, LinkageConfig, Progress};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CONFIG: &str = r#"
[[field]]
name = "national_id"
kind = "national_id"
[[field]]
name = "given_name"
kind = "name"
[[field]]
name = "family_name"
kind = "name"
[[field]]
name = "dob"
kind = "date"
[[field]]
name = "sex"
kind = "sex"
[[field]]
name = "village"
kind = "area"
[[field]]
name = "phone"
kind = "phone"

[[blocking]]
on = ["family_name:variant", "dob:year", "village:prefix2"]
[[blocking]]
on = ["given_name:variant", "village:prefix6"]
[[blocking]]
on = ["national_id"]
[[blocking]]
on = ["phone"]

[model]
u_sample_pairs = 2000000
deterministic = [{ on = ["national_id"] }, { on = ["given_name", "family_name", "dob"] }]
deterministic_recall = 0.6
max_block_pairs = 2000000
"#;

const SYLLABLES: &[&str] = &[
    "ba", "bi", "bu", "ga", "gi", "ha", "hi", "ka", "ki", "ku", "ma", "mu", "mi", "na", "ni",
    "nya", "ra", "ri", "ru", "sa", "se", "shi", "ta", "te", "tu", "wa", "ya", "yi", "za", "ze",
    "nge", "mba", "nda", "nzi", "kwe", "mwe",
];

fn word(rng: &mut StdRng, syllables: usize) -> String {
    // Squaring the uniform draw skews syllable choice, so some names are much more common.
    (0..syllables)
        .map(|_| {
            let x: f64 = rng.random();
            SYLLABLES[((x * x) * SYLLABLES.len() as f64) as usize]
        })
        .collect()
}

fn alter(rng: &mut StdRng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() < 3 {
        return s.to_string();
    }
    let i = rng.random_range(1..c.len());
    match rng.random_range(0..3) {
        0 => c[i] = (b'a' + rng.random_range(0..26u8)) as char,
        1 => {
            c.remove(i);
        }
        _ => c.swap(i - 1, i),
    }
    c.into_iter().collect()
}

struct Quiet;
impl Progress for Quiet {
    fn stage(&self, name: &str, total: u64) {
        eprintln!("  stage {name} ({total} planned pairs)");
    }
    fn advance(&self, _: u64) {}
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let config: LinkageConfig = toml::from_str(CONFIG).expect("the example's configuration parses");
    let mut rng = StdRng::seed_from_u64(1);
    let t = Instant::now();
    let mut data = Dataset::new(&config);
    let mut truth: Vec<u32> = Vec::new();
    let mut batch = Vec::new();
    for p in 0..n as u32 {
        let y = rng.random_range(1940..2025);
        let base = vec![
            if y < 2008 {
                format!("1{y}{:011}", rng.random_range(0..100_000_000_000u64))
            } else {
                String::new()
            },
            word(&mut rng, 3),
            word(&mut rng, 4),
            format!(
                "{y}-{:02}-{:02}",
                rng.random_range(1..13),
                rng.random_range(1..29)
            ),
            if rng.random_bool(0.5) {
                "F".into()
            } else {
                "M".into()
            },
            format!(
                "{:02}{:02}{:02}{:02}",
                rng.random_range(11..58),
                rng.random_range(1..16),
                rng.random_range(1..6),
                rng.random_range(1..9)
            ),
            if rng.random_bool(0.4) {
                format!("07{:08}", rng.random_range(0..100_000_000))
            } else {
                String::new()
            },
        ];
        let copies = usize::from(rng.random_bool(0.3));
        for c in 0..=copies {
            let mut r = base.clone();
            if c > 0 {
                match rng.random_range(0..4) {
                    0 => r[1] = alter(&mut rng, &r[1]),
                    1 => r[2] = alter(&mut rng, &r[2]),
                    2 => r[3] = r[3][..4].to_string(),
                    _ => r[0] = String::new(),
                }
            }
            batch.push(r);
            truth.push(p);
        }
        if batch.len() >= 100_000 {
            data.push_rows(&config, &batch, data.len())
                .expect("generated rows fit the configuration");
            batch.clear();
        }
    }
    data.push_rows(&config, &batch, data.len())
        .expect("generated rows fit the configuration");
    drop(batch);
    eprintln!(
        "generated and encoded {} records in {:.1} s",
        data.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let out = run(&config, &data, None, &Quiet).expect("the run succeeds");
    let secs = t.elapsed().as_secs_f64();
    if std::env::args().nth(2).as_deref() == Some("lookup") {
        lookups(&config, data, &out.model, &mut rng);
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("no-eval") {
        println!(
            "records {} candidate_pairs {} kept {} link_seconds {secs:.1}",
            data.len(),
            out.candidate_pairs,
            out.pairs.len()
        );
        return;
    }
    let eval = Evaluation {
        entity: &truth,
        cluster: &out.clustering.cluster,
        left: None,
    };
    let m = eval.metrics(None, None);
    debug_assert!(!truth.contains(&UNKNOWN));
    println!(
        "records {} candidate_pairs {} kept {} oversized_blocks {} link_seconds {secs:.1} precision {:.4} recall {:.4} f1 {:.4}",
        data.len(),
        out.candidate_pairs,
        out.pairs.len(),
        out.blocker.report.oversized.len(),
        m.precision,
        m.recall,
        m.f1
    );
}

/// Builds the lookup index over every record and times one-record lookups of altered copies
/// of random records.
fn lookups(
    config: &LinkageConfig,
    data: Dataset,
    model: &inkingi_linkage::TrainedModel,
    rng: &mut StdRng,
) {
    let t = Instant::now();
    let rows: Vec<Vec<String>> = (0..1000)
        .map(|_| {
            let r = rng.random_range(0..data.len());
            let mut row: Vec<String> = data
                .columns
                .iter()
                .map(|c| {
                    let v = c.values[r];
                    match c.kind {
                        _ if v == MISSING => String::new(),
                        FieldKind::Date if date::day(v) == 0 => date::year(v).to_string(),
                        FieldKind::Date => format!(
                            "{}-{:02}-{:02}",
                            date::year(v),
                            date::month(v),
                            date::day(v)
                        ),
                        FieldKind::Sex => {
                            if v == 1 {
                                "M".into()
                            } else {
                                "F".into()
                            }
                        }
                        _ => c.vocab.get_str(v).to_string(),
                    }
                })
                .collect();
            row[1] = alter(rng, &row[1]);
            row
        })
        .collect();
    let mut index = LinkIndex::build(config, data, model, 10_000).expect("the index builds");
    eprintln!("index built in {:.1} s", t.elapsed().as_secs_f64());
    let mut times: Vec<f64> = rows
        .into_iter()
        .map(|row| {
            let t = Instant::now();
            let found = index.lookup(row).expect("lookups succeed");
            std::hint::black_box(found);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "lookups 1000 p50_ms {:.3} p95_ms {:.3} max_ms {:.3}",
        times[500], times[950], times[999]
    );
}
