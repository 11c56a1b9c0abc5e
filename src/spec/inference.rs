//! `inference:` settings that are more than plain values: the device and the
//! floating-point precision (their names and parsing; `crate::infer` resolves and
//! applies them).

/// The `inference.device` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Auto,
    Cuda(usize),
}

impl DeviceChoice {
    /// Parses `cpu`, `auto`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "auto" => Ok(Self::Auto),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("{s:?} is not a device: use cpu, auto, cuda or cuda:N")),
        }
    }
}

/// The `inference.precision` setting: the floating-point type the model runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats, as the model was exported (the default; bit-identical to Python).
    #[default]
    F32,
    /// bfloat16 weights and inputs: 8 bits of mantissa; about 2-3 significant digits.
    Bf16,
    /// IEEE half precision: 11 bits of mantissa, a range of ±65504.
    F16,
}

impl Precision {
    /// The names `--precision` and `inference.precision` take (aliases: `fp32`,
    /// `float32`, `bfloat16`, `fp16`, `float16`, `half`, in YAML).
    pub const NAMES: [&'static str; 3] = ["f32", "bf16", "f16"];

    /// Parses `f32`, `bf16` or `f16`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(Self::F16),
            _ => Err(format!("{s:?} is not a precision: use f32, bf16 or f16")),
        }
    }

    /// The name used in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }
}
