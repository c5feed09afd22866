//! The optional features a binary can be built with, and the elements each brings: what
//! `parallax-inspect --features` prints, and how an element the build lacks is explained.
//!
//! A feature that needs only Rust code is on by default; one that needs a system library is
//! opt-in. Adding a codec adds one line to [`FEATURES`].

/// One Cargo feature of the build.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    /// The Cargo feature's name (`image-png`).
    pub name: &'static str,
    /// Whether this binary was built with it.
    pub built: bool,
    /// What it brings, in a few words.
    pub doc: &'static str,
    /// The elements it brings (gst names and aliases).
    pub elements: &'static [&'static str],
}

/// Every optional feature, one line each.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "image-png",
        built: cfg!(feature = "image-png"),
        doc: "PNG decoder and encoder (png crate, pure Rust)",
        elements: &["pngdec", "pngenc"],
    },
    Feature {
        name: "image-jpeg",
        built: cfg!(feature = "image-jpeg"),
        doc: "JPEG decoder (zune-jpeg) and encoder (jpeg-encoder), pure Rust",
        elements: &["jpegdec", "jpegenc"],
    },
    Feature {
        name: "audio-flac",
        built: cfg!(feature = "audio-flac"),
        doc: "FLAC parser and decoder (Symphonia, pure Rust)",
        elements: &["flacparse", "flacdec"],
    },
    Feature {
        name: "audio-mp3",
        built: cfg!(feature = "audio-mp3"),
        doc: "MPEG audio layers I-III parser and decoder (Symphonia, pure Rust)",
        elements: &[
            "mpegaudioparse",
            "mpg123audiodec",
            "mpegaudiodec",
            "avdec_mp3",
            "avdec_mp3float",
        ],
    },
    Feature {
        name: "audio-aac",
        built: cfg!(feature = "audio-aac"),
        doc: "AAC-LC parser and decoder (Symphonia, pure Rust)",
        elements: &["aacparse", "avdec_aac", "faad", "fdkaacdec"],
    },
    Feature {
        name: "audio-vorbis",
        built: cfg!(feature = "audio-vorbis"),
        doc: "Ogg demuxer and Vorbis decoder (Symphonia, pure Rust)",
        elements: &["oggdemux", "vorbisdec"],
    },
    Feature {
        name: "mp4",
        built: cfg!(feature = "mp4"),
        doc: "MP4/QuickTime demuxer (mp4parse, pure Rust)",
        elements: &["qtdemux"],
    },
    Feature {
        name: "mpeg-ts",
        built: cfg!(feature = "mpeg-ts"),
        doc: "MPEG transport stream demuxer and parser (pure Rust)",
        elements: &["tsdemux", "tsparse"],
    },
    Feature {
        name: "av1-encode",
        built: cfg!(feature = "av1-encode"),
        doc: "AV1 encoder (rav1e, pure Rust)",
        elements: &["rav1enc"],
    },
    Feature {
        name: "av1-decode",
        built: cfg!(feature = "av1-decode"),
        doc: "AV1 decoder (the system's libdav1d; opt-in)",
        elements: &["dav1ddec"],
    },
    Feature {
        name: "h264",
        built: cfg!(feature = "h264"),
        doc: "H.264 encoder, decoder and parser (OpenH264 built from source; opt-in)",
        elements: &["openh264enc", "openh264dec", "h264parse"],
    },
    Feature {
        name: "http",
        built: cfg!(feature = "http"),
        doc: "HTTP/1.1 source and sink (hyper, pure Rust)",
        elements: &["httpsrc", "souphttpsrc", "httpsink"],
    },
    Feature {
        name: "websocket",
        built: cfg!(feature = "websocket"),
        doc: "WebSocket source and sink (tungstenite, pure Rust)",
        elements: &["websocketsrc", "websocketsink"],
    },
    Feature {
        name: "zenoh",
        built: cfg!(feature = "zenoh"),
        doc: "Zenoh publisher, subscriber, queryable and querier (zenoh crate, pure Rust)",
        elements: &["zenohsrc", "zenohsink", "zenohqueryable", "zenohquerier"],
    },
];

/// The groups of features, and what each turns on.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("image-codecs", &["image-png", "image-jpeg"]),
    (
        "audio-codecs",
        &["audio-flac", "audio-mp3", "audio-aac", "audio-vorbis"],
    ),
];

/// The names of the features this binary was built with, in [`FEATURES`] order.
pub fn built() -> impl Iterator<Item = &'static str> {
    FEATURES.iter().filter(|f| f.built).map(|f| f.name)
}

/// The feature that brings element `name`, when the element comes with one.
pub fn bringing(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.elements.contains(&name))
}

/// `--version`'s long text: the version and the features built in.
pub fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let features: Vec<&str> = built().collect();
        format!(
            "{}\nfeatures: {}",
            env!("CARGO_PKG_VERSION"),
            if features.is_empty() {
                "none".to_owned()
            } else {
                features.join(" ")
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_features_bring_their_elements_and_missing_ones_do_not() {
        for f in FEATURES {
            for e in f.elements {
                assert_eq!(
                    crate::registry::find(e).is_some(),
                    f.built,
                    "{e} of feature {}",
                    f.name
                );
            }
        }
    }

    #[test]
    fn groups_name_known_features() {
        for (_, members) in GROUPS {
            for m in *members {
                assert!(FEATURES.iter().any(|f| f.name == *m), "{m}");
            }
        }
    }
}
