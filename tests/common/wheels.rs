//! Wheels built in the test, without a network: a zip with a correct `.dist-info` (WHEEL,
//! METADATA, RECORD with each file's SHA-256), and knobs to make it hostile.

use std::io::Write;

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

/// A wheel to build.
pub struct WheelSpec<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub tag: &'a str,
    /// (path, contents) of the files it installs.
    pub files: Vec<(&'a str, Vec<u8>)>,
    pub requires: Vec<&'a str>,
    /// Write this hash for the first file instead of its real one.
    pub wrong_hash: bool,
    /// Add a symlink entry at this path.
    pub symlink: Option<&'a str>,
}

impl<'a> WheelSpec<'a> {
    pub fn new(name: &'a str, version: &'a str, files: &[(&'a str, &str)]) -> Self {
        WheelSpec {
            name,
            version,
            tag: "py3-none-any",
            files: files
                .iter()
                .map(|(p, c)| (*p, c.as_bytes().to_vec()))
                .collect(),
            requires: vec![],
            wrong_hash: false,
            symlink: None,
        }
    }

    pub fn filename(&self) -> String {
        format!("{}-{}-{}.whl", self.name, self.version, self.tag)
    }

    /// The `.whl` bytes.
    pub fn build(&self) -> Vec<u8> {
        let dist_info = format!("{}-{}.dist-info", self.name, self.version);
        let mut metadata = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        for requirement in &self.requires {
            metadata.push_str(&format!("Requires-Dist: {requirement}\n"));
        }
        let wheel = "Wheel-Version: 1.0\nGenerator: pubfn-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
        let mut files: Vec<(String, Vec<u8>)> = self
            .files
            .iter()
            .map(|(p, c)| (p.to_string(), c.clone()))
            .collect();
        files.push((format!("{dist_info}/METADATA"), metadata.into_bytes()));
        files.push((format!("{dist_info}/WHEEL"), wheel.as_bytes().to_vec()));
        let mut record = String::new();
        for (i, (path, contents)) in files.iter().enumerate() {
            let digest = if i == 0 && self.wrong_hash {
                Sha256::digest(b"something else")
            } else {
                Sha256::digest(contents)
            };
            let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            record.push_str(&format!("{path},sha256={hash},{}\n", contents.len()));
        }
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        files.push((format!("{dist_info}/RECORD"), record.into_bytes()));

        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (path, contents) in &files {
            zip.start_file(path.as_str(), options).unwrap();
            zip.write_all(contents).unwrap();
        }
        if let Some(link) = self.symlink {
            zip.add_symlink(link, "/etc/passwd", options).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }
}
