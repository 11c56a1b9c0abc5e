//! A throwaway PostgreSQL server for tests: `initdb` into a temp folder, started
//! with `pg_ctl` on a free loopback port. One server per run of the test binary,
//! shared by the tests: each [`PgServer::start`] gets a database of its own
//! (dropped with it); the server is stopped and its folder deleted when the test
//! binary exits. Password authentication (scram-sha-256) over TCP, so wrong
//! passwords can be tested.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const USER: &str = "scorch";
pub const PASSWORD: &str = "pg-test-password-5e1d";

/// The server every test of this run shares.
struct Server {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

static SHARED: OnceLock<Server> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A test's database on the shared server.
pub struct PgServer {
    pub port: u16,
    /// The test's own database (what `profiles_yaml` points at).
    pub db: String,
    server: &'static Server,
}

impl PgServer {
    /// A new database on the run's server (started on first use).
    pub fn start() -> Self {
        let server = SHARED.get_or_init(|| {
            let s = Server::start();
            // Statics are not dropped: stop the server when the test binary exits.
            unsafe { libc::atexit(stop_shared) };
            s
        });
        let db = format!("warehouse_{}", NEXT_DB.fetch_add(1, Ordering::Relaxed));
        server.psql("postgres", &format!("CREATE DATABASE {db}"));
        PgServer {
            port: server.port,
            db,
            server,
        }
    }

    /// Runs SQL in the test's database with psql over TCP as the test user.
    pub fn sql(&self, sql: &str) -> String {
        self.server.psql(&self.db, sql)
    }

    /// A profiles.yaml text for this database, the password taken from `$password_env`.
    pub fn profiles_yaml(&self, name: &str, password_env: &str) -> String {
        format!(
            "{name}:\n  postgres:\n    host: 127.0.0.1\n    port: {}\n    user: {USER}\n    password: ${{{password_env}}}\n    dbname: {}\n    sslmode: disable\n    fetch_rows: 1000\n",
            self.port, self.db
        )
    }

    /// Loads Parquet files into a new table via CSV and `\copy`.
    pub fn load_parquet(&self, table: &str, parquet_glob: &Path, ddl: &str) {
        let csv = self.server.dir.join(format!("{}-{table}.csv", self.db));
        let o = super::run_python(&[
            "-c",
            &format!(
                "import polars as pl; pl.read_parquet({:?}, hive_partitioning=True).write_csv({:?})",
                parquet_glob.to_str().unwrap(),
                csv.to_str().unwrap()
            ),
        ]);
        assert!(o.status.success(), "{}", super::stderr(&o));
        self.sql(&format!("CREATE TABLE {table} ({ddl})"));
        self.sql(&format!(
            "\\copy {table} FROM '{}' CSV HEADER",
            csv.display()
        ));
        let _ = std::fs::remove_file(&csv);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.server.try_psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
        );
    }
}

extern "C" fn stop_shared() {
    if let Some(s) = SHARED.get() {
        s.stop();
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}

fn find_bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|p| p.join("initdb").exists())
        .expect("PostgreSQL server binaries not found: `make test` installs them (apt-get install -y postgresql)")
}

impl Server {
    fn start() -> Self {
        let bin = find_bin();
        let dir = tempfile::Builder::new()
            .prefix("scorch-pg-")
            .tempdir()
            .unwrap();
        // initdb refuses to run as root: run the server as the `postgres` user then.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success());
        }
        let s = Server {
            dir: dir.keep(),
            port: super::free_port(),
            bin,
            as_postgres,
        };
        let pwfile = s.dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if as_postgres {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .status()
                .unwrap();
        }
        let data = s.data();
        s.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                USER,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            s.port,
            s.dir.display()
        );
        s.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                s.dir.join("log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .current_dir(&self.dir)
                .output()
                .unwrap()
        } else {
            Command::new(&exe).args(args).output().unwrap()
        };
        assert!(
            out.status.success(),
            "{tool} failed: {}{}\nlog: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Runs SQL with psql over TCP as the test user; asserts it succeeds.
    fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql failed on {sql}: {e}"))
    }

    fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let psql = if self.bin.join("psql").exists() {
            self.bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Server {
    fn stop(&self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = [
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

/// DDL of the example churn feature table, matching make_churn_data.py's schema.
pub const CHURN_DDL: &str = "customer_id bigint, age float8, tenure_months bigint, monthly_charges float8, \
    total_charges float8, num_support_calls bigint, num_logins_30d bigint, avg_session_minutes float8, \
    days_since_last_login bigint, plan text, region text, payment_method text, contract text, device_os text, \
    has_partner boolean, paperless_billing boolean, discount_pct float8, num_products bigint, \
    late_payments_12m bigint, nps_score bigint, data_usage_gb float8, ds date";
