//! Native code, refused by name and by contents: the sandbox runs Python only.

use super::WheelError;

/// Extensions of native code that no pure-Python wheel needs (compared lowercased).
const NATIVE_EXTENSIONS: &[&str] = &[".so", ".pyd", ".dylib", ".dll", ".a", ".o", ".exe", ".wasm"];

/// Magic numbers of executable formats: ELF, Mach-O (both byte orders, 32/64-bit, fat) and wasm.
const NATIVE_MAGICS: &[(&[u8], &str)] = &[
    (b"\x7fELF", "an ELF binary"),
    (b"\xfe\xed\xfa\xce", "a Mach-O binary"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O binary"),
    (b"\xce\xfa\xed\xfe", "a Mach-O binary"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O binary"),
    (b"\xca\xfe\xba\xbe", "a universal Mach-O binary"),
    (b"\xca\xfe\xba\xbf", "a universal Mach-O binary"),
    (b"\0asm", "a WebAssembly module"),
];

/// Text files that may well start with the letters "MZ" without being DOS/Windows executables.
const TEXT_EXTENSIONS: &[&str] = &[".py", ".pyi", ".txt", ".md", ".rst", ".json", ".csv"];

/// Refuses files named like native code.
pub(super) fn check_native_name(path: &str) -> Result<(), WheelError> {
    let native = |reason: String| WheelError::NativeCode {
        path: path.to_owned(),
        reason,
    };
    let lower = path.to_ascii_lowercase();
    let file_name = lower.rsplit('/').next().unwrap_or(&lower);
    if let Some(ext) = NATIVE_EXTENSIONS
        .iter()
        .find(|ext| file_name.ends_with(*ext))
    {
        return Err(native(format!("a {ext} file")));
    }
    // Versioned shared libraries: libfoo.so.1, libfoo.so.1.2.3.
    if let Some((_, version)) = file_name.split_once(".so.")
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(native("a shared library".into()));
    }
    Ok(())
}

/// Refuses files whose contents are an executable, whatever they are called.
pub(super) fn check_native_contents(path: &str, data: &[u8]) -> Result<(), WheelError> {
    let native = |reason: &str| WheelError::NativeCode {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some((_, what)) = NATIVE_MAGICS.iter().find(|(m, _)| data.starts_with(m)) {
        return Err(native(what));
    }
    if data.starts_with(b"MZ") {
        // A PE file says where its "PE\0\0" signature is at offset 0x3c; text that happens to
        // start with "MZ" is refused only where text is not expected.
        let is_pe = data
            .get(0x3c..0x40)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .and_then(|b| usize::try_from(u32::from_le_bytes(b)).ok())
            .and_then(|at| data.get(at..at.checked_add(4)?))
            .is_some_and(|sig| sig == b"PE\0\0");
        let lower = path.to_ascii_lowercase();
        let is_text = TEXT_EXTENSIONS.iter().any(|ext| lower.ends_with(ext));
        if is_pe || !is_text {
            return Err(native("a Windows/DOS executable"));
        }
    }
    Ok(())
}
