//! The Python package, installed from its wheel into a fresh venv in a temporary
//! folder outside the clone: the tutorial (docs/tutorial.md) runs as written, the
//! Python API gives the CLI's results to the bit, and the installed `scorch` uses
//! the torch package's libtorch with no path into the build.
//!
//! `make test` builds the wheel (`make wheel-dev`: the dev profile, from the test
//! build's artifacts) into `$SCORCH_WHEEL_DIR` and numpy and pyarrow wheels into
//! `$SCORCH_WHEELHOUSE`; pip installs offline from those. torch is not downloaded:
//! the venv sees the build venv's torch (and what torch requires, nothing else)
//! through a `.pth` file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// The wheel `make wheel-dev` built.
fn wheel() -> PathBuf {
    let dir = std::env::var_os("SCORCH_WHEEL_DIR").map(PathBuf::from).expect(
        "SCORCH_WHEEL_DIR is not set: run `make test` (it builds the wheel with `make wheel-dev`)",
    );
    let wheels: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}: run `make wheel-dev`", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    assert_eq!(
        wheels.len(),
        1,
        "one wheel in {}: {wheels:?}",
        dir.display()
    );
    wheels[0].clone()
}

fn wheelhouse() -> PathBuf {
    std::env::var_os("SCORCH_WHEELHOUSE")
        .map(PathBuf::from)
        .expect("SCORCH_WHEELHOUSE is not set: run `make test` (`make wheelhouse` fills it)")
}

/// A temporary folder with `dist/<the wheel>` and a venv `scorch-env` that sees torch.
struct Env {
    dir: tempfile::TempDir,
    /// How torch was placed: "hard links" (its own paths) or "symbolic links".
    farm_mode: String,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scorch-wheel-")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        assert!(
            !dir.path().starts_with(repo()),
            "the venv must be outside the clone"
        );
        let dist = dir.path().join("dist");
        std::fs::create_dir_all(&dist).unwrap();
        let w = wheel();
        std::fs::copy(&w, dist.join(w.file_name().unwrap())).unwrap();
        // A fresh venv from the system Python (the build venv's own interpreter, so
        // torch's compiled modules match).
        let base = Command::new(python())
            .args(["-c", "import sys; print(sys._base_executable)"])
            .output()
            .unwrap();
        let base = stdout(&base).trim().to_string();
        let venv = dir.path().join("scorch-env");
        let o = Command::new(&base)
            .args(["-m", "venv", venv.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "venv: {}", stderr(&o));
        let farm = dir.path().join("torch-from-cache");
        let o = run_python(&[
            repo().join("tests/py/torch_farm.py").to_str().unwrap(),
            farm.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "torch_farm: {}", stderr(&o));
        let farm_mode = if stdout(&o).contains("as hard links") {
            "hard links"
        } else {
            "symbolic links"
        }
        .to_string();
        let site = Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ])
            .output()
            .unwrap();
        let site = PathBuf::from(stdout(&site).trim());
        std::fs::write(
            site.join("torch_from_cache.pth"),
            format!("{}\n", farm.display()),
        )
        .unwrap();
        Env { dir, farm_mode }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn venv_bin(&self) -> PathBuf {
        self.path().join("scorch-env/bin")
    }

    /// A command with the venv first on the PATH, pip offline, and nothing of the
    /// build's environment that could point at libtorch.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", self.venv_bin().display());
        c.current_dir(self.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.path())
            .env("TMPDIR", std::env::temp_dir())
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", wheelhouse())
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("OMP_NUM_THREADS", "1");
        c
    }

    fn install(&self) {
        let o = self
            .command(self.venv_bin().join("pip"))
            .args(["install", "--quiet"])
            .arg(self.path().join("dist").join(wheel().file_name().unwrap()))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pip install: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }

    fn python(&self, code: &str, args: &[&str]) -> Output {
        self.command(self.venv_bin().join("python"))
            .arg("-c")
            .arg(code)
            .args(args)
            .output()
            .unwrap()
    }
}

/// The tutorial as one bash script: `sh` blocks are commands, `python file=NAME`
/// blocks are written to NAME where they appear.
fn tutorial_script(md: &str) -> String {
    let mut script = String::from("set -euxo pipefail\n");
    let mut lines = md.lines();
    let mut blocks = 0;
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let body = body.join("\n");
        if info == "sh" {
            script.push_str(&body);
            script.push('\n');
            blocks += 1;
        } else if let Some(file) = info.strip_prefix("python file=") {
            script.push_str(&format!(
                "cat > {file} <<'SCORCH_TUTORIAL_EOF'\n{body}\nSCORCH_TUTORIAL_EOF\n"
            ));
            blocks += 1;
        }
    }
    assert!(blocks >= 6, "the tutorial has {blocks} runnable blocks");
    script
}

#[test]
fn the_tutorial_runs_as_written_from_the_wheel() {
    let env = Env::new();
    let md = std::fs::read_to_string(repo().join("docs/tutorial.md")).unwrap();
    let script = tutorial_script(&md);
    assert!(script.contains("pip install dist/scorch-*.whl"), "{script}");
    let o = env.command("bash").arg("-c").arg(&script).output().unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "tutorial failed:\n{out}\n{err}");
    // What each step says it does.
    for want in [
        "created a scorch project",
        "5000 rows: ['id', 'purchase_probability', 'model_name', 'model_version', 'run_id', 'scored_at']",
        "ok  models/shop/1.0.0: shop 1.0.0",
        "training log loss",
    ] {
        assert!(
            out.contains(want),
            "tutorial output lacks {want:?}:\n{out}\n{err}"
        );
    }
    let shop = env.path().join("shop");
    let bundle = std::fs::read_to_string(shop.join("models/shop/1.0.0/bundle.yaml")).unwrap();
    assert!(
        bundle.contains("\"purchase_probability\"") && bundle.contains("torchscript"),
        "{bundle}"
    );
    // The scores are probabilities, and the job's manifest names the new model.
    let check = env.python(
        "import json, sys, pyarrow.parquet as pq, pyarrow.compute as pc\n\
         t = pq.read_table(sys.argv[1] + '/output/scores/ds=2026-01-02')\n\
         lo, hi = pc.min_max(t['purchase_probability']).values()\n\
         assert 0 <= lo.as_py() <= hi.as_py() <= 1, (lo, hi)\n\
         assert t['id'].to_pylist() == sorted(t['id'].to_pylist())\n\
         m = json.load(open(sys.argv[1] + '/output/scores/ds=2026-01-02/_manifest.json'))\n\
         print(m['model']['name'], m['model']['version'], m['rows']['written'])",
        &[shop.to_str().unwrap()],
    );
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(stdout(&check).trim(), "shop 1.0.0 5000");
}

/// `manylinux_2_N_x86_64` in a wheel's file name: N.
fn manylinux_minor(tag: &str) -> Option<u32> {
    tag.strip_prefix("manylinux_2_")?
        .strip_suffix("_x86_64")?
        .parse()
        .ok()
}

/// The wheel's platform tag promises no more than its extension keeps: the glibc
/// and libstdc++ symbol versions it uses are allowed by that manylinux tag
/// (auditwheel's own reading), so pip refuses it by name on an older system
/// instead of an import failing there; and it needs no shared library beyond that
/// policy's system libraries and libtorch's two, which the torch package brings.
#[test]
fn the_wheels_manylinux_tag_holds_for_what_its_extension_needs() {
    let w = wheel();
    let o = run_python(&[
        repo().join("tests/py/wheel_platform.py").to_str().unwrap(),
        w.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let tag = v["tag"].as_str().unwrap();
    let promised = manylinux_minor(tag)
        .unwrap_or_else(|| panic!("{}: not a manylinux_2_N_x86_64 wheel", w.display()));
    let needs = v["symbols_allow"]
        .as_str()
        .and_then(manylinux_minor)
        .unwrap_or_else(|| {
            panic!(
                "auditwheel named no manylinux tag for the extension: {}",
                v["show"]
            )
        });
    assert!(
        needs <= promised,
        "the wheel says {tag}, but its extension needs glibc 2.{needs}: {}",
        v["show"]
    );
    let system = [
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "librt.so.1",
        "libpthread.so.0",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "ld-linux-x86-64.so.2",
    ];
    let torch = ["libtorch_cpu.so", "libc10.so"];
    let needed: Vec<&str> = v["needed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(needed.contains(&"libtorch_cpu.so"), "{needed:?}");
    for lib in &needed {
        assert!(
            system.contains(lib) || torch.contains(lib),
            "the extension needs {lib}, which neither manylinux nor torch provides: {needed:?}"
        );
    }
}

#[test]
fn the_installed_scorch_uses_the_torch_packages_libtorch_and_no_build_path() {
    let env = Env::new();
    env.install();
    let o = env
        .command(env.venv_bin().join("scorch"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("scorch "), "{}", stdout(&o));
    // The extension module names no folder of this machine's build.
    let o = env.python(
        "import importlib.util; print(importlib.util.find_spec('scorch._native').origin)",
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ext = PathBuf::from(stdout(&o).trim());
    assert!(ext.starts_with(env.path()), "{}", ext.display());
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(&ext)
        .output()
        .unwrap();
    let dynamic = stdout(&dynamic);
    assert!(dynamic.contains("libtorch_cpu.so"), "{dynamic}");
    assert!(
        !dynamic.contains("RPATH") && !dynamic.contains("RUNPATH"),
        "the extension carries a library path:\n{dynamic}"
    );
    // The libtorch loaded is the one in the venv's torch package (the test's
    // copy, under this temporary folder), and nothing of the build's.
    let o = env.python(
        "import os, sys, scorch\n\
         scorch.schema('job')\n\
         maps = open('/proc/self/maps').read().splitlines()\n\
         libs = sorted({l.split()[-1] for l in maps if 'libtorch' in l or 'libc10' in l})\n\
         assert any(l.endswith('/libtorch_cpu.so') for l in libs), libs\n\
         assert 'torch' not in sys.modules, 'import scorch imported torch'\n\
         print('\\n'.join(libs))\n\
         print('one libtorch', scorch.__version__)",
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let build_venv = python().parent().unwrap().parent().unwrap().to_path_buf();
    // With symbolic links the kernel names the files by their target, the build
    // venv; the loader's choice is then checked by the RPATH test above only.
    for lib in out
        .lines()
        .filter(|l| l.starts_with('/') && env.farm_mode == "hard links")
    {
        assert!(
            lib.starts_with(env.path().to_str().unwrap()),
            "{lib} is not the venv's torch (farm mode: {})",
            env.farm_mode
        );
        assert!(!lib.starts_with(build_venv.to_str().unwrap()), "{lib}");
    }
    assert!(out.contains("one libtorch "), "{out}");
}

#[test]
fn the_package_gives_the_clis_states_features_and_matrices_to_the_bit() {
    let env = Env::new();
    env.install();
    // pandas, to check that a pandas frame comes back as one.
    let o = env
        .command(env.venv_bin().join("pip"))
        .args(["install", "--quiet", "pandas"])
        .output()
        .unwrap();
    assert!(o.status.success(), "pip install pandas: {}", stderr(&o));
    // The churn example, several days including drifted ones with an unseen plan.
    let p = Project::new(6, 800);
    let train = p
        .path()
        .join("data/churn/features/ds=2026-11-2[3-5]/*.parquet");
    let data = p.path().join("data/churn/features/*/*.parquet");
    let spec = repo().join("preprocess/churn_features.yaml");
    let state = p.path().join("cli.state.json");
    p.fit(&spec, &train, &state);
    let cli_out = p.path().join("cli.parquet");
    p.apply(&state, &data, "customer_id,ds", &cli_out);
    let o = env.python(
        include_str!("../py/package_parity.py"),
        &[
            spec.to_str().unwrap(),
            train.to_str().unwrap(),
            data.to_str().unwrap(),
            state.to_str().unwrap(),
            cli_out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("parity: ok"), "{out}");
    println!("{out}");
}
