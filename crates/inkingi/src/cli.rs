//! The command line. Every option that configures the service has an `INKINGI_*` twin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use inkingi_domain::jobs::{JobName, JobStatus};
use inkingi_store::jobs::JobId;

use crate::config::{LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(name = "inkingi", version, about = "Social registry, beneficiary registry and integrated child record", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// A TOML configuration file; environment variables and flags override it.
    #[arg(long, global = true, env = "INKINGI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// sqlite://PATH (default: sqlite://inkingi-data/inkingi.db) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        global = true,
        env = "INKINGI_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "INKINGI_LOG_FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or inkingi=debug (RUST_LOG wins when set).
    #[arg(long, global = true, env = "INKINGI_LOG_LEVEL")]
    pub log_level: Option<String>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (and, unless --no-worker, the background worker). Applies migrations first.
    Serve(ServeArgs),
    /// Run only the background worker that executes queued jobs.
    Worker(WorkerArgs),
    /// Apply pending database migrations and load reference data, then exit.
    Migrate,
    /// Try Inkingi: create ./inkingi-data, migrate, create an admin user, serve.
    Demo(ServeArgs),
    /// Inspect and replay background jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Manage user accounts (roles and area scopes).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API tokens for machines and partners.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Import households and members from CSV files (see docs/CSV_FORMAT.md); safe to re-run.
    Import(ImportArgs),
    /// Export an area's households and members as CSV files in the import format.
    Export(ExportArgs),
    /// Verify the audit log's hash chain and print its head for anchoring.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a synthetic registry (households.csv, members.csv, and truth.csv: the duplicates
    /// it injected) in the import format. Needs no database.
    Generate(GenerateArgs),
    /// Record linkage on CSV files: find duplicates, link two files, evaluate against truth.
    /// Here --config names the linkage configuration (TOML), not the service's.
    #[command(subcommand)]
    Match(MatchCommand),
    /// Proxy-means-test scoring of the registry.
    #[command(subcommand)]
    Targeting(TargetingCommand),
    /// Agencies and programmes.
    #[command(subcommand)]
    Programmes(ProgrammesCommand),
    /// Serve simulators of outside systems, with faults injected on demand (demos and tests).
    /// Needs no database.
    #[command(subcommand)]
    Simulate(SimulateCommand),
    /// Ed25519 keys that sign DCI access tokens and messages. Needs no database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// DHIS2 (the HMIS): pull the child record's facts (`[connectors.dhis2]`), push indicators.
    #[command(subcommand)]
    Dhis2(Dhis2Command),
    /// SMS reminders, digests and notifications (`[connectors.sms]`).
    #[command(subcommand)]
    Sms(SmsCommand),
    /// The child record: feeds from files, services due and indicators.
    #[command(subcommand)]
    Children(ChildrenCommand),
    /// Load generator of the DCI benchmarks (bench/dci.sh). Needs no database.
    #[command(subcommand, hide = true)]
    DciBench(DciBenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum SmsCommand {
    /// Plan today's reminders, health workers' digests and escalations (and queue pending
    /// beneficiary notifications) now; the worker sends them. Running it again queues nothing
    /// new. The worker also runs it daily at `plan_at`.
    SendDue,
    /// Set a user's phone (for digests and escalations) and language (rw, en, fr).
    Contact {
        username: String,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        language: Option<String>,
    },
    /// Messages planned since a day (default today), as JSON lines.
    List {
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChildrenCommand {
    /// Store pre-primary enrolments from a school-data CSV (the columns of
    /// `POST /api/v1/children/feeds/school`): all rows, or none when any row is bad.
    ImportSchool {
        /// The CSV file.
        file: PathBuf,
        /// The sending system, part of every source key (same file, same source: nothing new).
        #[arg(long, default_value = "school-data")]
        source: String,
    },
    /// Evaluate every child under six (and every followed mother) again and rewrite the
    /// materialised services due and indicator inputs; run daily (statuses move with time).
    Recompute {
        /// Children read, evaluated and written at a time.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        page: u32,
    },
    /// Print the indicators of an area (default: the country, by district) for a month, as JSON.
    Indicators {
        #[arg(long)]
        area: Option<String>,
        /// YYYY-MM; default: the current month.
        #[arg(long)]
        month: Option<String>,
    },
    /// For benchmarks: write N synthetic children under six with immunisations and growth
    /// visits straight in SQL into an empty registry.
    #[command(hide = true)]
    SeedSynthetic {
        #[arg(long, default_value_t = 2_300_000)]
        children: i64,
    },
    /// For benchmarks: N times, store a new measurement of a random child and re-evaluate that
    /// child as the `children.services` job does; print the latency percentiles.
    #[command(hide = true)]
    BenchIncremental {
        #[arg(long, default_value_t = 1000)]
        events: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum DciBenchCommand {
    /// Concurrent clients running DCI sync searches; prints latency percentiles as JSON.
    Search(DciSearchArgs),
    /// Subscribes a DCI subscriber (e.g. `inkingi simulate subscriber`) to every event.
    Subscribe {
        #[arg(long)]
        url: String,
        #[arg(long, env = "INKINGI_BENCH_TOKEN", hide_env_values = true)]
        token: String,
        /// The subscriber's base, e.g. http://127.0.0.1:9001/dci.
        #[arg(long)]
        sender_uri: String,
    },
    /// Waits until every subscriber simulator has taken `expect` events; prints the rate.
    Wait {
        /// Subscriber simulators' base URLs (their /stats is polled), comma-separated.
        #[arg(long, value_delimiter = ',')]
        subscribers: Vec<String>,
        #[arg(long)]
        expect: u64,
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DciSearchArgs {
    /// Inkingi's base URL.
    #[arg(long)]
    pub url: String,
    #[arg(long, env = "INKINGI_BENCH_TOKEN", hide_env_values = true)]
    pub token: String,
    #[arg(long, default_value = "registration")]
    pub purpose: String,
    /// Directory of the generated registry files the loaded registry came from.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub clients: u32,
    #[arg(long, default_value_t = 30)]
    pub duration_secs: u64,
    /// Send this many requests per second in all (spread over the clients) instead of as many
    /// as the clients can; latency is then measured from each request's scheduled time, so a
    /// server that falls behind shows it (no coordinated omission).
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Predicate searches (sector, birth year, sex) instead of searches by national ID.
    #[arg(long)]
    pub predicate: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new private key (a JWK, readable by its owner only) for dci.signing_key_file,
    /// and print its public JWK Set for partners.
    Generate {
        /// The key id partners see in tokens and signatures, e.g. the month it was made.
        #[arg(long)]
        kid: String,
        /// Where to write the private key; must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public JWK Set of a private key file.
    Public {
        /// The private key file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum Dhis2Command {
    /// Pull what DHIS2 has new since the last sync (tracked entities, enrolments, events) into
    /// the child record, here and now; with --enqueue, as a job for the worker instead.
    Sync(Dhis2SyncArgs),
    /// Push the child indicators of a month to DHIS2 (`/api/dataValueSets`), one data value
    /// set per sector of `[aggregate.org_units]`: queued as `dhis2.push` jobs, or with --now
    /// here, printing each import summary and its conflicts.
    Push(Dhis2PushArgs),
}

#[derive(Debug, Args)]
pub struct Dhis2PushArgs {
    /// The month, YYYY-MM.
    #[arg(long)]
    pub month: String,
    /// Push here and now instead of queueing jobs for the worker.
    #[arg(long)]
    pub now: bool,
}

#[derive(Debug, Args)]
pub struct Dhis2SyncArgs {
    /// Queue a `dhis2.sync` job (retried with backoff by the worker) instead of syncing here.
    #[arg(long)]
    pub enqueue: bool,
}

#[derive(Debug, Subcommand)]
pub enum TargetingCommand {
    /// Score every active household (in pages, with batch writes) and store the scores.
    Score {
        /// ID or ID:VERSION of a saved model; the current (latest saved) model by default.
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
    },
    /// Simulate a model and eligibility rules over the registry without enrolling anyone:
    /// counts, cost per cycle, coverage, enrolment errors and overlaps by area, as CSV.
    Simulate(Box<SimulateArgs>),
    /// Bring the facts blocks that scoring and simulation read up to date with the registry
    /// (passes do this themselves first); with --rebuild, pack them all again.
    Facts {
        #[arg(long)]
        rebuild: bool,
    },
    /// For benchmarks: write a synthetic registry of N households straight in SQL into an
    /// empty database (with the illustrative programmes; one in ten enrolled in vup_ds).
    #[command(hide = true)]
    SeedSynthetic {
        #[arg(long, default_value_t = 3_200_000)]
        households: i64,
    },
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A request as JSON (the body of `POST /api/v1/targeting/simulations`); the options
    /// below add to it.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// province, district (default) or sector.
    #[arg(long, value_name = "LEVEL")]
    pub by: Option<String>,
    /// A programme to simulate (repeat); every programme by default.
    #[arg(long = "programme", value_name = "CODE")]
    pub programmes: Vec<String>,
    /// ID or ID:VERSION of a saved model; the current model by default.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Apply a saved rule set version to a programme: CODE=RULE_SET:VERSION (repeat).
    #[arg(long = "rule-set", value_name = "CODE=ID:VERSION")]
    pub rule_sets: Vec<String>,
    /// Apply a draft rule to a programme: CODE=RULE (repeat).
    #[arg(long = "rule", value_name = "CODE=RULE")]
    pub rules: Vec<String>,
    /// Compare with this model (ID or ID:VERSION).
    #[arg(long, value_name = "MODEL")]
    pub compare_model: Option<String>,
    /// Compare with this rule set version for a programme: CODE=ID:VERSION (repeat).
    #[arg(long = "compare-rule-set", value_name = "CODE=ID:VERSION")]
    pub compare_rule_sets: Vec<String>,
    /// Compare with this draft rule for a programme: CODE=RULE (repeat).
    #[arg(long = "compare-rule", value_name = "CODE=RULE")]
    pub compare_rules: Vec<String>,
    /// Area codes to limit the simulation to (comma-separated); the whole registry by default.
    #[arg(long, value_name = "AREAS")]
    pub scope: Option<String>,
    /// Write JSON instead of CSV.
    #[arg(long)]
    pub json: bool,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ProgrammesCommand {
    /// Store agencies and programmes from a TOML catalogue (default: the shipped illustrative
    /// Rwandan configuration); existing programmes are kept.
    Load {
        /// The catalogue file (see data/programmes/rw-illustrative.toml).
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// A DCI subscriber that takes `notify` messages (sender_uri http://ADDR/dci) and counts
    /// them: GET /stats shows events taken, duplicates and events out of order.
    Subscriber(SubscriberArgs),
    /// A national ID registry answering DCI `sync/search` by national ID (UIN) with the
    /// people of a members CSV, or of a registry generated from the seed (the demo's is
    /// `--households 20000 --seed 2026`); a share of them held with a discrepancy.
    Id(IdArgs),
    /// A civil registration (CRVS) registry speaking DCI: takes subscriptions, notifies live
    /// births and deaths of mothers and deceased drawn from its people (on demand with
    /// `POST /admin/emit {"births": N, "deaths": N}`, or every `--every-secs`), answers
    /// `sync/search` by UIN, BRN or DRN, and injects faults.
    Crvs(CrvsArgs),
    /// A DHIS2 instance serving the tracker API (`/api/tracker/trackedEntities`, `/events`)
    /// with the children under six of a registry export (or made up from the seed) and their
    /// generated health records, configured as data/dhis2/mapping.toml describes.
    Dhis2(Dhis2SimArgs),
    /// An SMS gateway speaking Kannel's `/cgi-bin/sendsms` and Africa's Talking's
    /// `/version1/messaging`; lists what it took (`GET /messages`) and sends delivery reports
    /// on demand (`POST /admin/dlr {"id": "...", "delivered": true}`).
    Sms(SmsSimArgs),
}

#[derive(Debug, Args)]
pub struct SmsSimArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Serve only this protocol: kannel or africastalking (default: both).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Kannel sendsms-user / Africa's Talking username accepted.
    #[arg(long, default_value = "inkingi")]
    pub username: String,
    /// Kannel password / Africa's Talking API key accepted.
    #[arg(long, default_value = "simulator-secret")]
    pub secret: String,
    /// Where Africa's Talking delivery reports go (Inkingi's `/sms/dlr/africastalking`).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Seeds the faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of requests answered 500 without taking the message (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub fail_share: f64,
    /// Share of messages taken but answered 503, as if the answer was lost (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub lost_ack_share: f64,
    /// Start a downtime (every request answered 503) after this many requests.
    #[arg(long, value_name = "N")]
    pub outage_after: Option<u64>,
    /// How long the downtime lasts, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub outage_secs: u64,
    /// Delay before each answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
}

#[derive(Debug, Args)]
pub struct CrvsArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seeds the generated people (with --households), the events and the faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A members CSV (as `inkingi generate` or `inkingi export` writes) whose people the
    /// events name, so they match registry persons.
    #[arg(long, value_name = "FILE", conflicts_with = "households")]
    pub people: Option<PathBuf>,
    /// Generate this many households with the seed and draw from their people.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub households: Option<u64>,
    /// The API token the simulator sends to Inkingi with its callbacks (or set
    /// INKINGI_CRVS_TOKEN).
    #[arg(long, env = "INKINGI_CRVS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Emit one event (births and deaths in turn) every this many seconds.
    #[arg(long, value_name = "SECS")]
    pub every_secs: Option<u64>,
    /// Share of events naming their person by a noisy name without ID (0 to 1).
    #[arg(long, default_value_t = 0.2, value_name = "SHARE", value_parser = parse_share)]
    pub noisy_share: f64,
    /// Share of events naming a person the registry does not hold (0 to 1).
    #[arg(long, default_value_t = 0.1, value_name = "SHARE", value_parser = parse_share)]
    pub unknown_share: f64,
    /// Share of deliveries sent twice (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub duplicate_share: f64,
    /// Share of deliveries swapped with the next one (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub reorder_share: f64,
    /// Share of DCI requests answered 500 (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub fail_share: f64,
    /// Start a downtime (every DCI request answered 503) after this many requests.
    #[arg(long, value_name = "N")]
    pub outage_after: Option<u64>,
    /// How long the downtime lasts, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub outage_secs: u64,
    /// Delay before each DCI answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
}

#[derive(Debug, Args)]
pub struct Dhis2SimArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seeds the made-up children, their records and the faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A members CSV (as `inkingi generate` or `inkingi export` writes, households.csv beside
    /// it) whose children under six DHIS2 holds.
    #[arg(long, value_name = "FILE", conflicts_with = "children")]
    pub people: Option<PathBuf>,
    /// Without --people: make up this many children.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub children: u32,
    /// The personal access token accepted (`Authorization: ApiToken …`).
    #[arg(long, default_value = "d2pat_simulator0000000000000000000000")]
    pub token: String,
    /// A mapping file describing the DHIS2 configuration (default: the shipped one).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Share of scheduled immunisation visits that did not happen (0 to 1).
    #[arg(long, default_value_t = 0.1, value_name = "SHARE", value_parser = parse_share)]
    pub missed_share: f64,
    /// Share of requests answered 500 (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub fail_share: f64,
    /// Start an outage (every request answered 503) after this many requests.
    #[arg(long, value_name = "N")]
    pub outage_after: Option<u64>,
    /// How long the outage lasts, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub outage_secs: u64,
    /// Delay before each answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Refuse aggregate values of this data element with an import conflict (repeatable).
    #[arg(long, value_name = "UID")]
    pub reject_data_element: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seeds the generated people (with --households), the discrepancies and the faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A members CSV (as `inkingi generate` or `inkingi export` writes) whose people the ID
    /// registry holds.
    #[arg(long, value_name = "FILE", conflicts_with = "households")]
    pub people: Option<PathBuf>,
    /// Generate this many households with the seed and hold their people.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub households: Option<u64>,
    /// Share of people held with one discrepancy (0 to 1).
    #[arg(long, default_value_t = 0.05, value_name = "SHARE", value_parser = parse_share)]
    pub mismatch_share: f64,
    /// Share of requests answered 500 (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub fail_share: f64,
    /// Start an outage (every request answered 503) after this many requests.
    #[arg(long, value_name = "N")]
    pub outage_after: Option<u64>,
    /// How long the outage lasts, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub outage_secs: u64,
    /// Delay before each answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
}

#[derive(Debug, Args)]
pub struct SubscriberArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The same seed injects the same faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of notify requests answered 500 (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub fail_share: f64,
    /// Start an outage (every request answered 503) after this many notify requests.
    #[arg(long, value_name = "N")]
    pub outage_after: Option<u64>,
    /// How long the outage lasts, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub outage_secs: u64,
    /// Delay before each answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Share of notify requests taken but answered 503, so they are sent again (0 to 1).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE", value_parser = parse_share)]
    pub duplicate_share: f64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Households to generate (1 to 10000000; Rwanda has about 3.2 million), not counting
    /// the re-registered copies injected as duplicates.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub households: u64,
    /// The same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for the files (created if missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Share of people registered a second time, with realistic errors (0 to 0.5).
    #[arg(long, default_value_t = 0.02, value_name = "SHARE", value_parser = parse_share)]
    pub duplicates: f64,
    /// Share of children under 16 with a birth registration number (0 to 1).
    #[arg(long, default_value_t = 0.3, value_name = "SHARE", value_parser = parse_share)]
    pub child_id_share: f64,
    /// The day the registry describes (ages are counted to it), YYYY-MM-DD. Fixed by default
    /// so that a seed gives the same files on any day.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,
}

/// A share: a number from 0 to 1.
fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("expected a number from 0 to 1, e.g. 0.02".into()),
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// households.csv
    #[arg(long, value_name = "FILE")]
    pub households: PathBuf,
    /// members.csv, in the household order of households.csv
    #[arg(long, value_name = "FILE")]
    pub members: PathBuf,
    /// Name of the source system; rows are stored with source key `<source>:<key>`.
    #[arg(long, default_value = "import")]
    pub source: String,
    /// Where to write the per-row error report (default: import-errors.csv).
    #[arg(long, value_name = "FILE", default_value = "import-errors.csv")]
    pub errors: PathBuf,
    /// Households per transaction.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    pub batch: u32,
    /// No progress bar (for logs and scripts).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// NISR code of the area (province, district, sector, cell or village), or `national`.
    #[arg(long, value_name = "CODE")]
    pub area: String,
    /// Directory to write households.csv and members.csv into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum MatchCommand {
    /// Find the records of one CSV file that are the same person; writes pairs.csv,
    /// clusters.csv, model.json and report.json to --out.
    Dedupe(MatchRunArgs),
    /// Link the records of two CSV files (same columns); writes the same files as dedupe.
    Link(MatchRunArgs),
    /// Compare a clusters.csv with known truth: pairwise precision, recall, F1 and B-cubed.
    Evaluate(EvaluateArgs),
    /// Find the registry's current people (in the database of --database-url) who are the
    /// same person; writes the same files as dedupe, record ids being person ids. --config is
    /// the linkage configuration (default: the built-in registry configuration).
    Run(RegistryMatchArgs),
    /// Benchmark of registration-time lookups: builds the lookup index the server keeps over
    /// the members of generated registry files (households.csv, members.csv) and times
    /// lookups of noisy copies of people drawn from them.
    LookupBench(LookupBenchArgs),
}

#[derive(Debug, Args)]
pub struct LookupBenchArgs {
    /// Directory with households.csv and members.csv (as `inkingi generate` writes them).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Lookups to time.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queries: u32,
    /// Seed of the choice of people and of their noise.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct RegistryMatchArgs {
    /// Directory for the outputs (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Score with this saved model.json instead of training a new one.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Only the people of this area (NISR code); default the whole country.
    #[arg(long, value_name = "CODE")]
    pub area: Option<String>,
    /// What names a record in the outputs: the person's id, or the key the importing source
    /// gave it (an import file's member_key, so `match evaluate` can compare with a
    /// generator's truth.csv); a person without one keeps their id.
    #[arg(long, value_enum, default_value_t = RegistryId::Person)]
    pub id: RegistryId,
    /// Only write the files: do not put the pairs for review into the review queue (for
    /// benchmark runs).
    #[arg(long)]
    pub no_queue: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistryId {
    Person,
    SourceKey,
}

#[derive(Debug, Args)]
pub struct MatchRunArgs {
    /// dedupe: the CSV file (header row; columns named in the configuration).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// link: the first CSV file.
    #[arg(long, value_name = "FILE")]
    pub left: Option<PathBuf>,
    /// link: the second CSV file.
    #[arg(long, value_name = "FILE")]
    pub right: Option<PathBuf>,
    /// The column that identifies a record in the outputs.
    #[arg(long, value_name = "COL", default_value = "id")]
    pub id_column: String,
    /// Directory for the outputs (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Score with this saved model.json instead of training a new one.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// A column of the input that names each record's true entity: evaluate the result,
    /// including the pair completeness of blocking, by subgroup.
    #[arg(long, value_name = "COL")]
    pub truth_column: Option<String>,
    /// How the truth column names entities.
    #[arg(long, value_enum, default_value_t = TruthFormat::Plain)]
    pub truth_format: TruthFormat,
}

/// `plain`: the value is the entity; `febrl`: a FEBRL record id (`rec-12-dup-0` is `rec-12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TruthFormat {
    Plain,
    Febrl,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// CSV file(s) with each record's id and entity; repeat for the two files of a link.
    #[arg(long, value_name = "FILE", required = true)]
    pub truth: Vec<PathBuf>,
    /// clusters.csv as `match dedupe` or `match link` wrote it.
    #[arg(long, value_name = "FILE")]
    pub clusters: PathBuf,
    /// The truth's record-id column.
    #[arg(long, value_name = "COL", default_value = "record_id")]
    pub id_column: String,
    /// The truth's entity column (default with --truth-format febrl: the id column).
    #[arg(long, value_name = "COL")]
    pub entity_column: Option<String>,
    #[arg(long, value_enum, default_value_t = TruthFormat::Plain)]
    pub truth_format: TruthFormat,
    /// A truth column whose values split the metrics (e.g. no_id, dob_precision); repeatable.
    #[arg(long, value_name = "COL")]
    pub subgroup: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. Without --password-stdin a one-time password is generated and printed once.
    Add(UsersAddArgs),
    /// List users.
    List,
    /// Disable a user: sign-in and their API tokens stop working, sessions end.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// Issue a new one-time password (printed once), to be changed at the next sign-in; the
    /// user's sessions end.
    ResetPassword { username: String },
}

#[derive(Debug, Args)]
pub struct UsersAddArgs {
    #[arg(long)]
    pub username: String,
    /// system_admin, national_officer, district_officer, sector_officer, enumerator,
    /// programme_manager, finance_officer, grievance_officer, health_worker,
    /// community_health_worker, partner, auditor or machine_client.
    #[arg(long)]
    pub role: String,
    /// An area code (NISR: 1, 2, 4, 6 or 8 digits) the user may see, with everything below it;
    /// repeat for several, or give `national`.
    #[arg(long = "area", required = true, value_name = "CODE")]
    pub areas: Vec<String>,
    /// Read the password from standard input (first line) instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token for a user; it is printed once and only its hash is stored.
    Create(TokensCreateArgs),
    /// Revoke a token by id or prefix (ink_XXXXXXXX).
    Revoke { id: String },
    /// List tokens (never their secrets).
    List,
}

#[derive(Debug, Args)]
pub struct TokensCreateArgs {
    #[arg(long)]
    pub username: String,
    /// read, write, audit, admin or purpose:<purpose>; repeat for several (default: read).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Narrow the token to these areas (default: the user's areas).
    #[arg(long = "area", value_name = "CODE")]
    pub areas: Vec<String>,
    /// Expire after this many days (default: never; revoke when no longer needed).
    #[arg(long)]
    pub expires_days: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exit 0 when intact, 4 naming the first bad entry otherwise.
    Verify(AuditVerifyArgs),
    /// Print the current head (sequence number and hash) for anchoring outside the database.
    Head,
    /// Append N synthetic entries (for benchmarking `audit verify`; never on a real system).
    #[command(hide = true)]
    Fill {
        #[arg(long)]
        count: u64,
    },
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// A head hash printed earlier by `audit head`: also check that the chain still contains it
    /// (catches entries removed from the end).
    #[arg(long, value_name = "HASH")]
    pub anchor: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "INKINGI_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Do not run the background worker in this process (run `inkingi worker` elsewhere).
    #[arg(long, env = "INKINGI_NO_WORKER")]
    pub no_worker: bool,
}

#[derive(Debug, Args, Clone)]
pub struct WorkerArgs {
    /// Serve /healthz, /readyz and /metrics on this address (port 0 picks a free port; the
    /// bound address is printed). Default: no listener.
    #[arg(long, env = "INKINGI_WORKER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List(JobsListArgs),
    /// Replay a dead job from its first attempt (or run a queued one now); --dead replays all.
    Retry(JobsRetryArgs),
    /// Enqueue system.probe self-test jobs; with --wait, wait for them and report.
    Probe(JobsProbeArgs),
    /// Delete succeeded jobs that finished before a cutoff (dead jobs are never deleted).
    Prune(JobsPruneArgs),
}

#[derive(Debug, Args)]
pub struct JobsPruneArgs {
    /// Delete succeeded jobs finished longer ago than this: a whole number and a unit, s, m, h,
    /// d or w, e.g. 7d or 12h.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: std::time::Duration,
}

/// `7d`, `12h`, `30m`, `90s`, `2w`: strictly a positive whole number and one unit, nothing else.
pub fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let expected = "expected a whole number and a unit (s, m, h, d or w), e.g. 7d or 12h";
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = s.split_at(digits);
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(expected.into()),
    };
    let n: u64 = number.parse().map_err(|_| expected.to_string())?;
    if n == 0 {
        return Err("must be more than 0".into());
    }
    // Ten years at most: older cutoffs are meaningless and would overflow date arithmetic.
    match n.checked_mul(unit_secs) {
        Some(secs) if secs <= 10 * 366 * 86_400 => Ok(std::time::Duration::from_secs(secs)),
        _ => Err("must be at most ten years".into()),
    }
}

#[derive(Debug, Args)]
pub struct JobsListArgs {
    /// Only jobs in this state: queued, running, succeeded or dead.
    #[arg(long)]
    pub status: Option<JobStatus>,
    /// Only jobs of this queue.
    #[arg(long)]
    pub queue: Option<JobName>,
    /// At most this many (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "dead"])))]
pub struct JobsRetryArgs {
    /// The job's id, as `inkingi jobs list` shows it.
    pub id: Option<JobId>,
    /// Replay every dead job instead.
    #[arg(long)]
    pub dead: bool,
    /// With --dead: only the dead jobs of this queue.
    #[arg(long, requires = "dead")]
    pub queue: Option<JobName>,
}

#[derive(Debug, Args)]
pub struct JobsProbeArgs {
    /// How many probe jobs to enqueue (1 to 1000000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// How long each run sleeps, in milliseconds (at most 600000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub sleep_ms: u64,
    /// How many attempts of each job fail (with a retryable error) before one succeeds.
    #[arg(long, default_value_t = 0)]
    pub fail_times: u32,
    /// Attempts before a probe is parked as dead (default: fail-times + 2, so probes succeed
    /// even if one worker crashes; set it to fail-times or less to exercise dead-lettering).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_attempts: Option<u32>,
    /// Wait up to this many seconds for every probe to finish, then report runs, duplicates
    /// and dead jobs; exits non-zero on a duplicate run or a timeout.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub wait: Option<u64>,
}

impl Cli {
    pub fn overrides(&self) -> Overrides {
        let listen = match &self.command {
            Command::Serve(a) | Command::Demo(a) => a.listen,
            _ => None,
        };
        Overrides {
            database_url: self.global.database_url.clone(),
            listen,
            log_format: self.global.log_format,
            log_level: self.global.log_level.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn shares_are_between_0_and_1() {
        assert_eq!(parse_share("0.02"), Ok(0.02));
        assert_eq!(parse_share("1"), Ok(1.0));
        for bad in ["", "-0.1", "1.5", "NaN", "2%"] {
            assert!(parse_share(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ages_are_a_number_and_a_unit() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        for bad in [
            "",
            "d",
            "7",
            "7D",
            "+7d",
            "7d ",
            "1e3s",
            "18446744073709551615w",
        ] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }
}
