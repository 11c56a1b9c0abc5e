//! `scorch init DIR`: a minimal project that validates clean and runs at once.
//!
//! ```text
//! DIR/
//!   README.md                      what is where, and the next commands
//!   profiles.yaml                  connection profiles (one example, secrets from the environment)
//!   jobs/score_daily.yaml          the job: Parquet in, scores out, a report
//!   preprocess/features.yaml       the preprocessing spec
//!   data/events/ds=2026-01-01/     a small sample input (made here, deterministic)
//!   models/starter/0.1.0/          a starter bundle: the spec fitted on the sample and a
//!                                  fixed logistic model, to be replaced by your own
//!   .scorch/schema/*.json          JSON Schemas the YAML files point editors at
//!   .gitignore                     output/ and the run history
//! ```
//!
//! The project is built in a hidden sibling folder and renamed into place, so a
//! failed `init` leaves nothing behind; a folder that exists and is not empty is
//! refused.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::validate::SchemaKind;

/// The sample input's date (the README's `scorch run … --date`).
pub const SAMPLE_DATE: &str = "2026-01-01";
/// Rows of the sample input.
pub const SAMPLE_ROWS: usize = 1000;
/// The job file `init` writes, relative to the project.
pub const JOB_FILE: &str = "jobs/score_daily.yaml";
/// The starter bundle, relative to the project.
pub const STARTER_BUNDLE: &str = "models/starter/0.1.0";

/// What `init` made, for printing.
#[derive(Debug)]
pub struct Initialized {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

impl std::fmt::Display for Initialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "created a scorch project in {}:", self.dir.display())?;
        for file in &self.files {
            writeln!(f, "  {file}")?;
        }
        let cd = self.dir.display();
        writeln!(f, "next:")?;
        writeln!(f, "  cd {cd}")?;
        writeln!(
            f,
            "  scorch validate jobs/ preprocess/ models/ profiles.yaml"
        )?;
        write!(f, "  scorch run {JOB_FILE} --date {SAMPLE_DATE}")
    }
}

/// Makes the project in `dir` (see the module docs).
pub fn init(dir: &Path) -> Result<Initialized> {
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .map_err(|e| Error::io("list", dir, e))?
                .next()
                .is_none();
        if !empty {
            return Err(Error::usage(format!(
                "{} exists and is not an empty folder: `scorch init` makes a new project; \
                 name a new folder",
                dir.display()
            )));
        }
    }
    let name = dir
        .file_name()
        .ok_or_else(|| Error::usage(format!("{}: name a folder", dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    let staging = parent.join(format!(".{name}.scorch-init.{}", std::process::id()));
    let made = build(&staging).and_then(|files| {
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(|e| Error::io("replace", dir, e))?;
        }
        std::fs::rename(&staging, dir).map_err(|e| Error::io("create", dir, e))?;
        Ok(files)
    });
    match made {
        Ok(files) => Ok(Initialized {
            dir: dir.to_path_buf(),
            files,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Writes every file of the project under `root`; returns their paths.
fn build(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut put = |rel: &str, text: &str| -> Result<()> {
        let path = root.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| Error::io("create", p, e))?;
        }
        crate::storage::write_file_atomic(&path, text.as_bytes())?;
        files.push(rel.to_string());
        Ok(())
    };
    put("README.md", README)?;
    put("profiles.yaml", PROFILES)?;
    put(JOB_FILE, JOB)?;
    put("preprocess/features.yaml", SPEC)?;
    put(".gitignore", "output/\n.scorch/history.sqlite*\n")?;
    for kind in SchemaKind::ALL {
        let text = serde_json::to_string_pretty(&crate::validate::json_schema(kind))
            .expect("schema serializes");
        put(&format!(".scorch/schema/{}.json", kind.name()), &text)?;
    }
    // The sample input.
    let data_rel = format!("data/events/ds={SAMPLE_DATE}/part-00000.parquet");
    let data = root.join(&data_rel);
    let mut df = sample(SAMPLE_ROWS)?;
    std::fs::create_dir_all(data.parent().expect("has a folder"))
        .map_err(|e| Error::io("create", &data, e))?;
    crate::sink::write_parquet(
        &mut df,
        &data,
        &crate::sink::ParquetOptions {
            zstd_level: 3,
            row_group_size: 128 * 1024,
            metadata: vec![],
        },
    )?;
    files.push(data_rel);
    // The starter bundle: the spec fitted on the sample, and a fixed model.
    let bundle = root.join(STARTER_BUNDLE);
    std::fs::create_dir_all(&bundle).map_err(|e| Error::io("create", &bundle, e))?;
    let spec = crate::preprocess::load_spec(&root.join("preprocess/features.yaml"))?;
    let state = crate::preprocess::fit(&spec, df.lazy(), "data/events (sample)")?;
    let state_path = bundle.join("preprocess.state.json");
    state.save(&state_path)?;
    let model_path = bundle.join("model.pt");
    starter_model(&model_path, state.feature_names.len())?;
    crate::model::create::create(&crate::model::create::NewBundle {
        dir: bundle,
        model: model_path,
        state: state_path,
        name: "starter".into(),
        version: "0.1.0".into(),
        description: Some(
            "A fixed logistic model for trying the project out: replace it with your own \
             (scorch.save_bundle or scorch bundle create)."
                .into(),
        ),
        format: Some(crate::spec::bundle::ModelFormat::Torchscript),
        outputs: vec![crate::model::create::OutputArg {
            name: "score".into(),
            shape: Some(vec![]),
        }],
        force: false,
    })?;
    for f in ["bundle.yaml", "model.pt", "preprocess.state.json"] {
        files.push(format!("{STARTER_BUNDLE}/{f}"));
    }
    Ok(files)
}

/// A deterministic sample: `id`, `amount` (skewed, some nulls), `visits`, `plan`.
fn sample(rows: usize) -> Result<DataFrame> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut unit = move || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let plans = ["basic", "plus", "pro"];
    let (mut amount, mut visits, mut plan) = (vec![], vec![], vec![]);
    for _ in 0..rows {
        let u = unit();
        amount.push((u > 0.05).then(|| (5.0 * unit() + 1.0).exp().round() / 10.0));
        visits.push((unit() * 30.0) as i64);
        plan.push(plans[(unit() * 3.0) as usize % 3]);
    }
    let id: Vec<i64> = (1..=rows as i64).collect();
    Ok(DataFrame::new(
        rows,
        vec![
            Column::new("id".into(), id),
            Column::new("amount".into(), amount),
            Column::new("visits".into(), visits),
            Column::new("plan".into(), plan),
        ],
    )?)
}

/// A TorchScript model `sigmoid(x · w + b)` with fixed weights, traced by libtorch.
fn starter_model(path: &Path, n_features: usize) -> Result<()> {
    use tch::{Device, Kind, Tensor};
    let weights: Vec<f32> = (0..n_features)
        .map(|i| if i % 2 == 0 { 0.5 } else { -0.25 })
        .collect();
    let w = Tensor::from_slice(&weights).view([n_features as i64, 1]);
    let example = Tensor::zeros([2, n_features as i64], (Kind::Float, Device::Cpu));
    let module = tch::CModule::create_by_tracing("Starter", "forward", &[example], &mut |x| {
        vec![(x[0].matmul(&w) - 0.5).sigmoid().squeeze_dim(1)]
    })
    .map_err(|e| Error::Internal(format!("cannot trace the starter model: {e}")))?;
    module
        .save(path)
        .map_err(|e| Error::Internal(format!("cannot save {}: {e}", path.display())))
}

const README: &str = r#"# A scorch project

Made by `scorch init`. Every folder has one meaning:

| path | what it holds |
|---|---|
| `jobs/` | job files: what to read, which model, where the scores go (`scorch run`) |
| `preprocess/` | preprocessing specs: features, fitted on training data (`scorch.fit`) |
| `models/` | model bundles: model file + fitted state + `bundle.yaml` |
| `data/` | a small sample input, one folder per date (`ds=YYYY-MM-DD`) |
| `profiles.yaml` | connection profiles (warehouses, object stores); secrets come from the environment |
| `.scorch/schema/` | JSON Schemas of the YAML files, for editors |
| `output/` | scored tables, manifests and reports (written by runs; not committed) |

Try it:

```sh
scorch validate jobs/ preprocess/ models/ profiles.yaml
scorch run jobs/score_daily.yaml --date 2026-01-01
```

The scores are in `output/scores/ds=2026-01-01/part-00000.parquet`, the run's
report in `output/scores/_runs/`.

`models/starter/0.1.0` is a placeholder with fixed weights. Train your own model in
Python on the same preprocessing, save it as a bundle and point the job's `model:` at
it:

```python
import scorch
state = scorch.fit("preprocess/features.yaml", training_frame)
X = scorch.to_matrix(training_frame, state)       # float32, the rows the model sees
# ... train a torch.nn.Module on X ...
scorch.save_bundle("models/my_model/1.0.0", model, state, outputs=["score"],
                   name="my_model", version="1.0.0")
```
"#;

const PROFILES: &str = r#"# Connection profiles, kept apart from jobs. Secrets come from the environment:
# write ${NAME}, never the value. A job names a profile in `source.postgres.profile`
# or `storage_profile`.
warehouse:
  postgres:
    host: localhost
    port: 5432
    user: scorch
    password: ${WAREHOUSE_PASSWORD}
    dbname: analytics
"#;

const JOB: &str = r#"# yaml-language-server: $schema=../.scorch/schema/job.json
# Scores one day of data/events with the model in `model:`.
#   scorch run jobs/score_daily.yaml --date 2026-01-01
name: score_daily
description: Score every event row of the run date.
source:
  parquet:
    path: data/events/ds={{ ds }}/*.parquet
keys: [id]
model: models/starter/0.1.0
report:
  checks:
    - {column: id, metric: uniqueness, min: 1}
    - {column: amount, metric: completeness, min: 0.9, severity: warn}
output:
  path: output/scores
"#;

const SPEC: &str = r#"# yaml-language-server: $schema=../.scorch/schema/preprocessing.json
# Preprocessing: fitted once on training data (scorch.fit, or scorch preprocess fit);
# a model bundle pins the fitted state, so scoring applies exactly what training did.
name: features
version: 1.0.0
features:
  - column: amount
    steps:
      - fill_null: {strategy: mean}
      - log1p
      - standardize
  - column: visits
    steps:
      - standardize
  - column: plan
    steps:
      - one_hot: {}
"#;
