//! H.264 sequence parameter sets (ITU-T H.264 7.3.2.1.1 and Annex E): the picture size,
//! frame rate, profile and level of a stream, read before anything runs so that the caps of
//! a demuxer's pad (tsdemux) or a parser's output (h264parse on `avc` input) carry what
//! decoders after them are planned with.
//!
//! Only reading: the bits are untrusted, so every read is checked, every count bounded, and
//! a unit that ends early or says something impossible is an error naming the field, never a
//! panic. Fields are announced as gst's h264parse announces them (`profile=constrained-
//! baseline`, `level=1.3`, `chroma-format=4:2:0`, the frame rate reduced).

use crate::element::prelude::*;

/// What an SPS says that caps carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sps {
    pub(crate) profile_idc: u8,
    /// constraint_set0_flag in the top bit down to constraint_set5_flag.
    pub(crate) constraints: u8,
    pub(crate) level_idc: u8,
    /// 0 (monochrome), 1 (4:2:0), 2 (4:2:2) or 3 (4:4:4).
    pub(crate) chroma_format_idc: u32,
    pub(crate) bit_depth_luma: u32,
    pub(crate) bit_depth_chroma: u32,
    /// The picture's size after the frame cropping rectangle.
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Whether every picture is a frame (no fields).
    pub(crate) frame_mbs_only: bool,
    /// The VUI's sample aspect ratio, when it gives one.
    pub(crate) sar: Option<(u32, u32)>,
    /// Frames per second as the VUI's timing gives it (time_scale over two ticks a frame).
    pub(crate) framerate: Option<(u32, u32)>,
}

/// Profiles whose SPS carry the chroma format, bit depths and scaling matrices.
const HIGH_PROFILES: &[u8] = &[100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Table E-1's sample aspect ratios, by aspect_ratio_idc 1 to 16.
const SAR: [(u32, u32); 16] = [
    (1, 1),
    (12, 11),
    (10, 11),
    (16, 11),
    (40, 33),
    (24, 11),
    (20, 11),
    (32, 11),
    (80, 33),
    (18, 11),
    (15, 11),
    (64, 33),
    (160, 99),
    (4, 3),
    (3, 2),
    (2, 1),
];

/// Reads the bits of an RBSP (emulation prevention bytes already taken out).
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self, what: &'static str) -> Result<u32, String> {
        let byte = self
            .data
            .get(self.at / 8)
            .ok_or_else(|| format!("cut short before {what}"))?;
        let b = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(u32::from(b))
    }

    fn bits(&mut self, n: u32, what: &'static str) -> Result<u32, String> {
        (0..n).try_fold(0u32, |v, _| Ok(v << 1 | self.bit(what)?))
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, String> {
        Ok(self.bit(what)? == 1)
    }

    /// ue(v): exp-Golomb, at most 32 bits of value.
    fn ue(&mut self, what: &'static str) -> Result<u32, String> {
        let mut zeros = 0;
        while self.bit(what)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(format!("{what} is no exp-Golomb code"));
            }
        }
        let rest = self.bits(zeros, what)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// se(v): ue(v) mapped to 1, -1, 2, -2, ...
    fn se(&mut self, what: &'static str) -> Result<i64, String> {
        let k = i64::from(self.ue(what)?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    /// ue(v) that must be at most `max`.
    fn ue_max(&mut self, max: u32, what: &'static str) -> Result<u32, String> {
        let v = self.ue(what)?;
        if v > max {
            return Err(format!("{what} is {v}, more than {max}"));
        }
        Ok(v)
    }
}

/// A NAL unit's payload without its emulation prevention bytes (`00 00 03` is `00 00`).
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Skips a scaling_list() of `size` coefficients (7.3.2.1.1.1).
fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Result<(), String> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se("a scaling list's delta_scale")?;
            if !(-128..=127).contains(&delta) {
                return Err(format!("delta_scale {delta} is outside -128 to 127"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

impl Sps {
    /// Reads an SPS NAL unit: its one-byte header (type 7), then the parameter set.
    pub(crate) fn parse(nal: &[u8]) -> Result<Sps, String> {
        match nal.first() {
            None => return Err("the unit is empty".into()),
            Some(h) if h & 0x1F != 7 => {
                return Err(format!("NAL unit type {} is no SPS", h & 0x1F));
            }
            Some(_) => {}
        }
        let data = rbsp(&nal[1..]);
        let r = &mut Bits { data: &data, at: 0 };
        let profile_idc = r.bits(8, "profile_idc")? as u8;
        let constraints = r.bits(8, "the constraint flags")? as u8;
        let level_idc = r.bits(8, "level_idc")? as u8;
        r.ue_max(31, "seq_parameter_set_id")?;
        let (mut chroma_format_idc, mut separate_planes) = (1, false);
        let (mut bit_depth_luma, mut bit_depth_chroma) = (8, 8);
        if HIGH_PROFILES.contains(&profile_idc) {
            chroma_format_idc = r.ue_max(3, "chroma_format_idc")?;
            if chroma_format_idc == 3 {
                separate_planes = r.flag("separate_colour_plane_flag")?;
            }
            bit_depth_luma = 8 + r.ue_max(6, "bit_depth_luma_minus8")?;
            bit_depth_chroma = 8 + r.ue_max(6, "bit_depth_chroma_minus8")?;
            r.flag("qpprime_y_zero_transform_bypass_flag")?;
            if r.flag("seq_scaling_matrix_present_flag")? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag("seq_scaling_list_present_flag")? {
                        skip_scaling_list(r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue_max(12, "log2_max_frame_num_minus4")?;
        match r.ue_max(2, "pic_order_cnt_type")? {
            0 => {
                r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")?;
            }
            1 => {
                r.flag("delta_pic_order_always_zero_flag")?;
                r.se("offset_for_non_ref_pic")?;
                r.se("offset_for_top_to_bottom_field")?;
                let n = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
                for _ in 0..n {
                    r.se("offset_for_ref_frame")?;
                }
            }
            _ => {}
        }
        r.ue("max_num_ref_frames")?;
        r.flag("gaps_in_frame_num_value_allowed_flag")?;
        // At most 16384 pixels a side: level 6.2 allows 139264 macroblocks a picture.
        let mbs_wide = 1 + r.ue_max(1023, "pic_width_in_mbs_minus1")?;
        let map_units_high = 1 + r.ue_max(1023, "pic_height_in_map_units_minus1")?;
        let frame_mbs_only = r.flag("frame_mbs_only_flag")?;
        if !frame_mbs_only {
            r.flag("mb_adaptive_frame_field_flag")?;
        }
        r.flag("direct_8x8_inference_flag")?;
        let fields = if frame_mbs_only { 1 } else { 2 };
        let mut width = mbs_wide * 16;
        let mut height = fields * map_units_high * 16;
        if r.flag("frame_cropping_flag")? {
            let mut crop = [0u32; 4];
            for (c, what) in crop.iter_mut().zip([
                "frame_crop_left_offset",
                "frame_crop_right_offset",
                "frame_crop_top_offset",
                "frame_crop_bottom_offset",
            ]) {
                *c = r.ue_max(16384, what)?;
            }
            // Table 6-1: crop units are chroma samples (or luma samples without chroma).
            let (unit_x, unit_y) = match (separate_planes, chroma_format_idc) {
                (true, _) | (_, 0) => (1, fields),
                (_, 1) => (2, 2 * fields),
                (_, 2) => (2, fields),
                _ => (1, fields),
            };
            let (cut_x, cut_y) = (unit_x * (crop[0] + crop[1]), unit_y * (crop[2] + crop[3]));
            if cut_x >= width || cut_y >= height {
                return Err(format!(
                    "the cropping rectangle ({cut_x} by {cut_y}) leaves nothing of the \
                     {width}x{height} picture"
                ));
            }
            width -= cut_x;
            height -= cut_y;
        }
        let (mut sar, mut framerate) = (None, None);
        if r.flag("vui_parameters_present_flag")? {
            if r.flag("aspect_ratio_info_present_flag")? {
                let idc = r.bits(8, "aspect_ratio_idc")?;
                sar = match idc {
                    255 => {
                        let w = r.bits(16, "sar_width")?;
                        let h = r.bits(16, "sar_height")?;
                        (w > 0 && h > 0).then_some((w, h))
                    }
                    1..=16 => Some(SAR[idc as usize - 1]),
                    _ => None,
                };
            }
            if r.flag("overscan_info_present_flag")? {
                r.flag("overscan_appropriate_flag")?;
            }
            if r.flag("video_signal_type_present_flag")? {
                r.bits(4, "video_format")?;
                if r.flag("colour_description_present_flag")? {
                    r.bits(24, "the colour description")?;
                }
            }
            if r.flag("chroma_loc_info_present_flag")? {
                r.ue("chroma_sample_loc_type_top_field")?;
                r.ue("chroma_sample_loc_type_bottom_field")?;
            }
            if r.flag("timing_info_present_flag")? {
                let ticks = r.bits(32, "num_units_in_tick")?;
                let scale = r.bits(32, "time_scale")?;
                // A frame is two ticks (a field each), as gst's h264parse reads it.
                framerate = reduce(u64::from(scale), 2 * u64::from(ticks));
            }
        }
        Ok(Sps {
            profile_idc,
            constraints,
            level_idc,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            width,
            height,
            frame_mbs_only,
            sar,
            framerate,
        })
    }

    /// gst's name of the profile (`gst_codec_utils_h264_get_profile`).
    pub(crate) fn profile(&self) -> Option<&'static str> {
        let set = |n: u8| self.constraints & (0x80 >> n) != 0;
        Some(match self.profile_idc {
            66 if set(1) => "constrained-baseline",
            66 => "baseline",
            77 => "main",
            88 => "extended",
            100 if set(4) && set(5) => "constrained-high",
            100 if set(4) => "progressive-high",
            100 => "high",
            110 if set(3) => "high-10-intra",
            110 if set(4) => "progressive-high-10",
            110 => "high-10",
            122 if set(3) => "high-4:2:2-intra",
            122 => "high-4:2:2",
            244 if set(3) => "high-4:4:4-intra",
            244 => "high-4:4:4",
            44 => "cavlc-4:4:4-intra",
            118 => "multiview-high",
            128 => "stereo-high",
            83 if set(5) => "scalable-constrained-baseline",
            83 => "scalable-baseline",
            86 if set(3) => "scalable-high-intra",
            86 if set(5) => "scalable-constrained-high",
            86 => "scalable-high",
            _ => return None,
        })
    }

    /// gst's name of the level (`gst_codec_utils_h264_get_level`): `1b`, `1.1` ... `6.2`.
    pub(crate) fn level(&self) -> Option<&'static str> {
        let set3 = self.constraints & 0x10 != 0;
        Some(match self.level_idc {
            11 if set3 => "1b",
            9 => "1b",
            10 => "1",
            11 => "1.1",
            12 => "1.2",
            13 => "1.3",
            20 => "2",
            21 => "2.1",
            22 => "2.2",
            30 => "3",
            31 => "3.1",
            32 => "3.2",
            40 => "4",
            41 => "4.1",
            42 => "4.2",
            50 => "5",
            51 => "5.1",
            52 => "5.2",
            60 => "6",
            61 => "6.1",
            62 => "6.2",
            _ => return None,
        })
    }

    /// gst's `chroma-format`.
    pub(crate) fn chroma_format(&self) -> &'static str {
        ["4:0:0", "4:2:0", "4:2:2", "4:4:4"][self.chroma_format_idc.min(3) as usize]
    }

    /// Sets the fields gst's h264parse announces from an SPS on `s`: size, frame rate (when
    /// the SPS has one), pixel aspect ratio, interlacing, chroma format, bit depths, profile
    /// and level.
    pub(crate) fn describe(&self, s: &mut Structure) {
        let fraction = |(n, d): (u32, u32)| {
            let f = i32::try_from(n)
                .ok()
                .zip(i32::try_from(d).ok())
                .and_then(|(n, d)| Fraction::new(n, d));
            f.map(CapsValue::Fraction)
        };
        s.set("width", CapsValue::Int(self.width.into()));
        s.set("height", CapsValue::Int(self.height.into()));
        if let Some(f) = self.framerate.and_then(fraction) {
            s.set("framerate", f);
        }
        if let Some(f) = fraction(self.sar.unwrap_or((1, 1))) {
            s.set("pixel-aspect-ratio", f);
        }
        let interlace = if self.frame_mbs_only {
            "progressive"
        } else {
            "mixed"
        };
        s.set("interlace-mode", CapsValue::Str(interlace.into()));
        s.set("chroma-format", CapsValue::Str(self.chroma_format().into()));
        s.set("bit-depth-luma", CapsValue::Int(self.bit_depth_luma.into()));
        s.set(
            "bit-depth-chroma",
            CapsValue::Int(self.bit_depth_chroma.into()),
        );
        if let Some(p) = self.profile() {
            s.set("profile", CapsValue::Str(p.into()));
        }
        if let Some(l) = self.level() {
            s.set("level", CapsValue::Str(l.into()));
        }
    }
}

/// `num/den` in lowest terms, when both fit gst's 32-bit fractions and neither is 0.
fn reduce(num: u64, den: u64) -> Option<(u32, u32)> {
    if num == 0 || den == 0 {
        return None;
    }
    let (mut a, mut b) = (num, den);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let (n, d) = (num / a, den / a);
    Some((
        u32::try_from(n).ok().filter(|n| *n <= i32::MAX as u32)?,
        u32::try_from(d).ok().filter(|d| *d <= i32::MAX as u32)?,
    ))
}

/// Where the first SPS of an Annex B byte stream begins (its NAL header) and ends (the next
/// start code; `None` when none follows yet).
pub(crate) fn find_sps(stream: &[u8]) -> Option<(usize, Option<usize>)> {
    let mut starts = start_codes(stream);
    let begin = starts.find(|&at| stream.get(at).is_some_and(|h| h & 0x1F == 7))?;
    let end = start_codes(&stream[begin..]).next().map(|n| {
        // The next unit's start code (with a leading zero byte) is not part of this one.
        let code = begin + n - 3;
        if code > begin && stream[code - 1] == 0 {
            code - 1
        } else {
            code
        }
    });
    Some((begin, end))
}

/// Where each NAL unit of `stream` begins: the byte after each `00 00 01`.
fn start_codes(stream: &[u8]) -> impl Iterator<Item = usize> + '_ {
    stream
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0, 0, 1])
        .map(|(i, _)| i + 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// SPS units OpenH264 writes (taken from gst's `codec_data`), with what gst's h264parse
    /// announces for them.
    #[test]
    fn openh264_sps_read_as_gst_reads_them() {
        for (sps, w, h, level) in [
            ("6742c00d8c8d40a0f900f08846a0", 320, 240, "1.3"),
            ("6742c00d8c8d40b0db52403c2211a8", 350, 202, "1.3"),
            ("6742c0288c8d403c0113f2c03c2211a8", 1920, 1080, "4"),
            ("6742c00b8c8d41626403c2211a80", 176, 144, "1.1"),
            ("6742d00b8c8d423900f08846a0", 64, 48, "1b"),
            ("6742d00b8c8d4396c444403c2211a8", 98, 66, "1b"),
        ] {
            let s = Sps::parse(&hex(sps)).unwrap();
            assert_eq!((s.width, s.height), (w, h), "{sps}");
            assert_eq!(s.profile(), Some("constrained-baseline"));
            assert_eq!(s.level(), Some(level), "{sps}");
            assert_eq!(s.chroma_format(), "4:2:0");
            assert_eq!((s.bit_depth_luma, s.framerate), (8, None));
            assert!(s.frame_mbs_only);
        }
    }

    /// Writes an SPS bit by bit, for the syntax OpenH264 does not use.
    #[derive(Default)]
    struct Writer {
        bits: Vec<u8>,
    }

    impl Writer {
        fn u(&mut self, n: u32, v: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push((v >> i) as u8 & 1);
            }
            self
        }
        fn ue(&mut self, v: u64) -> &mut Self {
            let len = 64 - (v + 1).leading_zeros();
            self.u(len - 1, 0).u(len, v + 1)
        }
        fn se(&mut self, v: i64) -> &mut Self {
            self.ue(if v > 0 {
                2 * v as u64 - 1
            } else {
                2 * (-v) as u64
            })
        }
        /// The NAL unit: header, the bits with a stop bit, emulation prevention.
        fn nal(&mut self) -> Vec<u8> {
            self.u(1, 1);
            while self.bits.len() % 8 != 0 {
                self.bits.push(0);
            }
            let mut out = vec![0x67];
            let mut zeros = 0;
            for byte in self.bits.chunks(8) {
                let b = byte.iter().fold(0u8, |v, bit| v << 1 | bit);
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                out.push(b);
            }
            out
        }
    }

    /// A High 4:2:2 10-bit 1080i SPS with scaling lists, poc type 1, cropping, a 16:11
    /// sample aspect ratio and 30000/1001 timing.
    fn high422() -> Vec<u8> {
        let mut w = Writer::default();
        w.u(8, 122).u(8, 0).u(8, 41).ue(0);
        w.ue(2).ue(2).ue(2).u(1, 0); // 4:2:2, 10 bits, no bypass
        w.u(1, 1); // scaling matrix
        for i in 0..8 {
            w.u(1, u64::from(i % 3 == 0));
            if i % 3 == 0 {
                let size = if i < 6 { 16 } else { 64 };
                for k in 0..size {
                    w.se(if k == 3 { -8 } else { 1 });
                }
            }
        }
        w.ue(0).ue(1).u(1, 0).se(-2).se(3).ue(3).se(1).se(-1).se(0);
        w.ue(4).u(1, 0).ue(119).ue(33); // 1920 wide, 34 map units of 2 fields: 1088
        w.u(1, 0).u(1, 1).u(1, 1); // fields, mbaff, direct 8x8
        w.u(1, 1).ue(0).ue(0).ue(0).ue(4); // crop 4 units of 2 field rows: 8 rows
        w.u(1, 1); // VUI
        w.u(1, 1).u(8, 4); // 16:11
        w.u(1, 0).u(1, 1).u(3, 5).u(1, 0).u(1, 1).u(24, 0x010101);
        w.u(1, 1).ue(0).ue(0);
        w.u(1, 1).u(32, 1001).u(32, 60000).u(1, 1);
        w.nal()
    }

    #[test]
    fn high_profile_syntax_cropping_and_vui() {
        let s = Sps::parse(&high422()).unwrap();
        assert_eq!((s.width, s.height), (1920, 1080));
        assert!(!s.frame_mbs_only);
        assert_eq!(s.chroma_format(), "4:2:2");
        assert_eq!((s.bit_depth_luma, s.bit_depth_chroma), (10, 10));
        assert_eq!(s.profile(), Some("high-4:2:2"));
        assert_eq!(s.level(), Some("4.1"));
        assert_eq!(s.sar, Some((16, 11)));
        assert_eq!(s.framerate, Some((30000, 1001)));
        let mut st = Structure::new("video/x-h264");
        s.describe(&mut st);
        assert_eq!(
            Caps::one(st).to_string(),
            "video/x-h264, width=(int)1920, height=(int)1080, framerate=(fraction)30000/1001, \
             pixel-aspect-ratio=(fraction)16/11, interlace-mode=(string)mixed, \
             chroma-format=(string)4:2:2, bit-depth-luma=(int)10, bit-depth-chroma=(int)10, \
             profile=(string)high-4:2:2, level=(string)4.1"
        );
    }

    #[test]
    fn cropping_in_4_4_4_and_monochrome_counts_luma_samples() {
        let sps = |chroma: u64| {
            let mut w = Writer::default();
            w.u(8, 244).u(8, 0).u(8, 30).ue(0).ue(chroma);
            if chroma == 3 {
                w.u(1, 0);
            }
            w.ue(0).ue(0).u(1, 0).u(1, 0);
            w.ue(0).ue(2).ue(1).u(1, 0).ue(9).ue(8).u(1, 1).u(1, 1);
            w.u(1, 1).ue(3).ue(1).ue(2).ue(5).u(1, 0);
            Sps::parse(&w.nal()).unwrap()
        };
        for chroma in [0, 3] {
            let s = sps(chroma);
            assert_eq!((s.width, s.height), (160 - 4, 144 - 7), "{chroma}");
        }
        // 4:2:0 counts chroma samples: two luma each way.
        let mut w = Writer::default();
        w.u(8, 100)
            .u(8, 0x0C)
            .u(8, 31)
            .ue(0)
            .ue(1)
            .ue(0)
            .ue(0)
            .u(1, 0)
            .u(1, 0);
        w.ue(0).ue(2).ue(1).u(1, 0).ue(9).ue(8).u(1, 1).u(1, 1);
        w.u(1, 1).ue(3).ue(1).ue(2).ue(5).u(1, 0);
        let s = Sps::parse(&w.nal()).unwrap();
        assert_eq!((s.width, s.height), (160 - 8, 144 - 14));
        assert_eq!(s.profile(), Some("constrained-high"));
        assert_eq!(s.level(), Some("3.1"));
    }

    #[test]
    fn broken_units_name_the_field() {
        let good = hex("6742c00d8c8d40a0f900f08846a0");
        assert_eq!(
            Sps::parse(&good[..3]).unwrap_err(),
            "cut short before level_idc"
        );
        assert_eq!(
            Sps::parse(&good[..6]).unwrap_err(),
            "cut short before max_num_ref_frames"
        );
        assert_eq!(
            Sps::parse(&[0x68, 1]).unwrap_err(),
            "NAL unit type 8 is no SPS"
        );
        // pic_order_cnt_type 5.
        let mut w = Writer::default();
        w.u(8, 66).u(8, 0).u(8, 30).ue(0).ue(0).ue(5);
        assert_eq!(
            Sps::parse(&w.nal()).unwrap_err(),
            "pic_order_cnt_type is 5, more than 2"
        );
        // Cropping away the whole picture.
        let mut w = Writer::default();
        w.u(8, 66)
            .u(8, 0)
            .u(8, 30)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(1)
            .u(1, 0);
        w.ue(0)
            .ue(0)
            .u(1, 1)
            .u(1, 1)
            .u(1, 1)
            .ue(8)
            .ue(0)
            .ue(0)
            .ue(0);
        assert!(Sps::parse(&w.nal()).unwrap_err().contains("leaves nothing"));
    }

    #[test]
    fn the_first_sps_of_a_byte_stream_is_found() {
        let sps = hex("6742c00d8c8d40a0f900f08846a0");
        let mut stream = vec![0, 0, 0, 1, 9, 0xF0, 0, 0, 1];
        stream.extend_from_slice(&sps);
        stream.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xCE]);
        let (begin, end) = find_sps(&stream).unwrap();
        assert_eq!(&stream[begin..end.unwrap()], &sps[..]);
        assert_eq!(find_sps(&stream[..20]), Some((9, None)));
        assert_eq!(find_sps(&[0, 0, 1, 0x65, 0, 0, 1, 0x41]), None);
    }

    proptest! {
        /// Any bytes are an SPS or an error, never a panic; and the parse of a real one cut
        /// anywhere or with bytes flipped is too.
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..96),
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..6),
            cut in any::<usize>(),
        ) {
            let mut nal = vec![0x67];
            nal.extend_from_slice(&bytes);
            let _ = Sps::parse(&nal);
            let _ = find_sps(&bytes);
            let mut real = high422();
            for (at, x) in flips {
                let n = real.len();
                real[1 + at % (n - 1)] ^= x;
            }
            real.truncate(1 + cut % real.len());
            if let Ok(s) = Sps::parse(&real) {
                prop_assert!(s.width > 0 && s.height > 0);
            }
        }
    }
}
