//! Training-time augmentation (HIVENAS.md section 3, step 2): a random affine transform
//! (rotation, shifts, shear, zoom; bilinear sampling, nearest fill), a horizontal flip, and
//! the per-sample contrast, saturation and cutout, every draw from a per-sample seed.
//!
//! Geometry, contrast and saturation run in pixel units, before standardization: the
//! affine resampling and the contrast (a blend with the channel mean) commute with a
//! per-channel affine map, and saturation is only meaningful on non-negative colours.
//! Cutout runs last, on standardized values, and fills with 0 (the training mean).

use serde::{Deserialize, Serialize};

use super::{DataError, Standardizer};

/// Which augmentations run, with their probabilities and ranges. Defaults are HiveNAS's
/// (`affine` on, cutout 0.5, saturation 0.75, contrast 0.75). Unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Random affine transform (rotation, shifts, shear, zoom) on or off.
    pub affine: bool,
    /// Rotation drawn uniformly from `[-r, r]` degrees.
    pub rotation_deg: f32,
    /// Horizontal shift drawn from `[-s, s]` times the width.
    pub width_shift: f32,
    /// Vertical shift drawn from `[-s, s]` times the height.
    pub height_shift: f32,
    /// Shear angle drawn from `[-s, s]` degrees.
    pub shear_deg: f32,
    /// Zoom range `[lo, hi]`; the row and column factors are drawn separately.
    pub zoom: [f32; 2],
    /// Probability of a horizontal flip (after the affine transform).
    pub horizontal_flip: f32,
    /// Probability of a random contrast change.
    pub contrast: f32,
    /// Contrast factor range, applied around each channel's mean over the image.
    pub contrast_factor: [f32; 2],
    /// Probability of a random saturation change (RGB only; skipped on grayscale).
    pub saturation: f32,
    /// Saturation factor range.
    pub saturation_factor: [f32; 2],
    /// Probability of cutout.
    pub cutout: f32,
    /// Cutout patch side as a fraction of the image side, drawn separately for height and
    /// width; the patch lies wholly inside the image.
    pub cutout_size: [f32; 2],
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            affine: true,
            rotation_deg: 15.0,
            width_shift: 0.1,
            height_shift: 0.1,
            shear_deg: 10.0,
            zoom: [0.8, 1.1],
            horizontal_flip: 0.5,
            contrast: 0.75,
            contrast_factor: [0.5, 2.0],
            saturation: 0.75,
            saturation_factor: [0.2, 3.0],
            cutout: 0.5,
            cutout_size: [0.1, 0.2],
        }
    }
}

impl AugmentConfig {
    /// Everything off: batches are the standardized images, unchanged.
    pub fn none() -> Self {
        AugmentConfig {
            affine: false,
            horizontal_flip: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            cutout: 0.0,
            ..Self::default()
        }
    }

    /// HiveNAS's four switches: `affine` (which in Keras also carries the flip) and the
    /// probabilities of cutout, saturation and contrast; ranges keep their defaults.
    pub fn hivenas(affine: bool, cutout: f32, saturation: f32, contrast: f32) -> Self {
        AugmentConfig {
            affine,
            horizontal_flip: if affine { 0.5 } else { 0.0 },
            cutout,
            saturation,
            contrast,
            ..Self::default()
        }
    }

    /// Whether any augmentation is on.
    pub fn any(&self) -> bool {
        self.affine
            || self.horizontal_flip > 0.0
            || self.contrast > 0.0
            || self.saturation > 0.0
            || self.cutout > 0.0
    }

    /// Checks probabilities lie in `[0, 1]` and ranges are finite with `lo <= hi`.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |field: &str, message: String| DataError::BadOption {
            what: format!("augmentation setting `{field}`"),
            message,
        };
        for (field, p) in [
            ("horizontal_flip", self.horizontal_flip),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
            ("cutout", self.cutout),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(bad(field, format!("{p}; a probability must lie in [0, 1]")));
            }
        }
        for (field, v) in [
            ("rotation_deg", self.rotation_deg),
            ("width_shift", self.width_shift),
            ("height_shift", self.height_shift),
            ("shear_deg", self.shear_deg),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(bad(field, format!("{v}; expected a finite value >= 0")));
            }
        }
        for (field, [lo, hi], min) in [
            ("zoom", self.zoom, f32::MIN_POSITIVE),
            ("contrast_factor", self.contrast_factor, 0.0),
            ("saturation_factor", self.saturation_factor, 0.0),
            ("cutout_size", self.cutout_size, 0.0),
        ] {
            if !(lo.is_finite() && hi.is_finite() && min <= lo && lo <= hi) {
                return Err(bad(
                    field,
                    format!("[{lo}, {hi}]; expected finite [lo, hi] with {min} <= lo <= hi"),
                ));
            }
        }
        if self.cutout_size[1] > 1.0 {
            return Err(bad(
                "cutout_size",
                format!("{:?}; fractions of a side must be <= 1", self.cutout_size),
            ));
        }
        Ok(())
    }
}

/// A small counter-based generator (SplitMix64): portable, seedable per sample, so a
/// sample's draws depend only on its seed, never on which thread ran it.
pub(crate) struct SampleRng(u64);

impl SampleRng {
    pub(crate) fn new(seed: u64) -> Self {
        SampleRng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    fn range(&mut self, [lo, hi]: [f32; 2]) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    fn symmetric(&mut self, r: f32) -> f32 {
        self.range([-r, r])
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize
    }
}

/// SplitMix64's finalizer: a bijective mix of 64 bits.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mirrors an HWC image left to right, in place.
pub fn flip_horizontal(values: &mut [f32], shape: [usize; 3]) {
    let [h, w, c] = shape;
    assert_eq!(
        values.len(),
        h * w * c,
        "flip_horizontal: values do not match {shape:?}"
    );
    for row in values.chunks_exact_mut(w * c) {
        for x in 0..w / 2 {
            for k in 0..c {
                row.swap(x * c + k, (w - 1 - x) * c + k);
            }
        }
    }
}

/// Everything one sample's augmentation drew, in a fixed order so that turning one
/// operation off leaves the others' draws unchanged.
struct Draws {
    theta: f32,
    shift_rows: f32,
    shift_cols: f32,
    shear: f32,
    zoom_rows: f32,
    zoom_cols: f32,
    flip: bool,
    contrast: Option<f32>,
    saturation: Option<f32>,
    /// `(top, left, height, width)` of the cutout patch.
    cutout: Option<(usize, usize, usize, usize)>,
}

/// Augments single images into standardized f32 (NHWC), from `u8` pixels.
#[derive(Clone, Debug)]
pub struct Augmenter {
    config: AugmentConfig,
    shape: [usize; 3],
    standardizer: Standardizer,
}

impl Augmenter {
    /// An augmenter for images of `shape` `[H, W, C]`; checks the config.
    pub fn new(
        config: AugmentConfig,
        shape: [usize; 3],
        standardizer: Standardizer,
    ) -> Result<Self, DataError> {
        config.validate()?;
        assert_eq!(
            standardizer.channels(),
            shape[2],
            "standardizer channels != shape C"
        );
        Ok(Augmenter {
            config,
            shape,
            standardizer,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &AugmentConfig {
        &self.config
    }

    fn draw(&self, rng: &mut SampleRng) -> Draws {
        let cfg = &self.config;
        let [h, w, _] = self.shape;
        let theta = rng.symmetric(cfg.rotation_deg).to_radians();
        let shift_rows = rng.symmetric(cfg.height_shift) * h as f32;
        let shift_cols = rng.symmetric(cfg.width_shift) * w as f32;
        let shear = rng.symmetric(cfg.shear_deg).to_radians();
        let zoom_rows = rng.range(cfg.zoom);
        let zoom_cols = rng.range(cfg.zoom);
        let flip = rng.unit() < cfg.horizontal_flip;
        let (p, f) = (rng.unit(), rng.range(cfg.contrast_factor));
        let contrast = (p < cfg.contrast).then_some(f);
        let (p, f) = (rng.unit(), rng.range(cfg.saturation_factor));
        let saturation = (p < cfg.saturation).then_some(f);
        let p = rng.unit();
        let ph = (rng.range(cfg.cutout_size) * h as f32).round() as usize;
        let pw = (rng.range(cfg.cutout_size) * w as f32).round() as usize;
        let (ph, pw) = (ph.min(h), pw.min(w));
        let top = rng.below(h - ph + 1);
        let left = rng.below(w - pw + 1);
        let cutout = (p < cfg.cutout && ph > 0 && pw > 0).then_some((top, left, ph, pw));
        Draws {
            theta,
            shift_rows,
            shift_cols,
            shear,
            zoom_rows,
            zoom_cols,
            flip,
            contrast,
            saturation,
            cutout,
        }
    }

    /// Augments one image `src` (`u8`, HWC) into `out` (standardized f32, HWC), with every
    /// random draw taken from `seed`.
    pub fn augment(&self, src: &[u8], seed: u64, out: &mut [f32]) {
        let [h, w, c] = self.shape;
        assert_eq!(
            src.len(),
            h * w * c,
            "augment: source does not match {:?}",
            self.shape
        );
        assert_eq!(
            out.len(),
            src.len(),
            "augment: output length != source length"
        );
        let d = self.draw(&mut SampleRng::new(seed));

        if self.config.affine {
            self.affine(src, &d, out);
        } else {
            for (o, &s) in out.iter_mut().zip(src) {
                *o = s as f32;
            }
        }
        if d.flip {
            flip_horizontal(out, self.shape);
        }
        if let Some(f) = d.contrast {
            contrast(out, c, f);
        }
        if let (Some(f), 3) = (d.saturation, c) {
            saturation(out, f);
        }
        self.standardizer.apply_f32(out);
        if let Some((top, left, ph, pw)) = d.cutout {
            for row in top..top + ph {
                out[(row * w + left) * c..(row * w + left + pw) * c].fill(0.0);
            }
        }
    }

    /// Keras's `apply_affine_transform`: the matrix rotation * shift * shear * zoom about
    /// the image centre maps each output (row, col) to an input position, sampled
    /// bilinearly with positions clamped to the border (nearest fill).
    fn affine(&self, src: &[u8], d: &Draws, out: &mut [f32]) {
        let [h, w, c] = self.shape;
        let (sin_t, cos_t) = d.theta.sin_cos();
        let (sin_s, cos_s) = d.shear.sin_cos();
        // Shear * zoom, then shift, then rotation.
        let a = [
            [d.zoom_rows, -sin_s * d.zoom_cols],
            [0.0, cos_s * d.zoom_cols],
        ];
        let rot = [[cos_t, -sin_t], [sin_t, cos_t]];
        let m = [
            [
                rot[0][0] * a[0][0] + rot[0][1] * a[1][0],
                rot[0][0] * a[0][1] + rot[0][1] * a[1][1],
            ],
            [
                rot[1][0] * a[0][0] + rot[1][1] * a[1][0],
                rot[1][0] * a[0][1] + rot[1][1] * a[1][1],
            ],
        ];
        let t = [
            rot[0][0] * d.shift_rows + rot[0][1] * d.shift_cols,
            rot[1][0] * d.shift_rows + rot[1][1] * d.shift_cols,
        ];
        let (cr, cc) = (h as f32 / 2.0 - 0.5, w as f32 / 2.0 - 0.5);
        let (max_r, max_c) = ((h - 1) as f32, (w - 1) as f32);
        for r in 0..h {
            let dr = r as f32 - cr;
            for col in 0..w {
                let dc = col as f32 - cc;
                let y = (m[0][0] * dr + m[0][1] * dc + t[0] + cr).clamp(0.0, max_r);
                let x = (m[1][0] * dr + m[1][1] * dc + t[1] + cc).clamp(0.0, max_c);
                // Both are clamped to >= 0, so truncation is the floor.
                let (y0, x0) = (y as usize, x as usize);
                let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
                let (fy, fx) = (y - y0 as f32, x - x0 as f32);
                let (i00, i01) = ((y0 * w + x0) * c, (y0 * w + x1) * c);
                let (i10, i11) = ((y1 * w + x0) * c, (y1 * w + x1) * c);
                let o = &mut out[(r * w + col) * c..(r * w + col + 1) * c];
                for (k, ok) in o.iter_mut().enumerate() {
                    let (a, b) = (src[i00 + k] as f32, src[i01 + k] as f32);
                    let (d, e) = (src[i10 + k] as f32, src[i11 + k] as f32);
                    let top = a + (b - a) * fx;
                    let bottom = d + (e - d) * fx;
                    *ok = top + (bottom - top) * fy;
                }
            }
        }
    }
}

/// Scales each channel's deviation from its mean over the image by `f`.
fn contrast(values: &mut [f32], c: usize, f: f32) {
    let n = (values.len() / c) as f32;
    let mut mean = vec![0f32; c];
    for px in values.chunks_exact(c) {
        for k in 0..c {
            mean[k] += px[k];
        }
    }
    for m in &mut mean {
        *m /= n;
    }
    for px in values.chunks_exact_mut(c) {
        for k in 0..c {
            px[k] = f * px[k] + (1.0 - f) * mean[k];
        }
    }
}

/// Scales HSV saturation by `f` (capped at 1), keeping hue and value: in HSV each channel
/// is `V * (1 - S * k)` with `k` set by the hue, so scaling S scales `V - x` alike.
fn saturation(values: &mut [f32], f: f32) {
    for px in values.chunks_exact_mut(3) {
        let v = px[0].max(px[1]).max(px[2]);
        let lo = px[0].min(px[1]).min(px[2]);
        if v <= 0.0 || v == lo {
            continue;
        }
        let r = f.min(v / (v - lo));
        for x in px.iter_mut() {
            *x = *x * r + v * (1.0 - r);
        }
    }
}
