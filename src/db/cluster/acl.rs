//! One POSIX ACL entry added to a directory: search permission for one user, so the cluster's
//! user can pass through a data directory that is otherwise its owner's alone.
//!
//! Written as the kernel's `system.posix_acl_access` attribute (the format `setfacl` writes:
//! a version word, then `(tag, perm, id)` entries sorted by tag and id), so no `acl` package is
//! needed on the host.

use std::path::Path;

const XATTR: &str = "system.posix_acl_access";
const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const UNDEFINED_ID: u32 = u32::MAX;
const SEARCH: u16 = 0o1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    tag: u16,
    perm: u16,
    id: u32,
}

/// Adds `--x` for `uid` to `dir`'s access ACL, keeping every entry it had.
pub fn grant_search(dir: &Path, uid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut buffer = [0u8; 4096];
    let entries = match rustix::fs::getxattr(dir, XATTR, &mut buffer[..]) {
        Ok(len) => decode(&buffer[..len]).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "unreadable ACL")
        })?,
        Err(rustix::io::Errno::NODATA) => {
            let mode = std::fs::metadata(dir)?.permissions().mode();
            from_mode(mode)
        }
        Err(e) => return Err(e.into()),
    };
    let value = encode(&with_search_for(entries, uid));
    rustix::fs::setxattr(dir, XATTR, &value, rustix::fs::XattrFlags::empty())?;
    Ok(())
}

/// The minimal ACL equivalent to a mode's permission bits.
fn from_mode(mode: u32) -> Vec<Entry> {
    let bits = |shift: u32| ((mode >> shift) & 0o7) as u16;
    vec![
        Entry {
            tag: USER_OBJ,
            perm: bits(6),
            id: UNDEFINED_ID,
        },
        Entry {
            tag: GROUP_OBJ,
            perm: bits(3),
            id: UNDEFINED_ID,
        },
        Entry {
            tag: OTHER,
            perm: bits(0),
            id: UNDEFINED_ID,
        },
    ]
}

/// `entries` with search permission for `uid`, and a mask that lets it through.
fn with_search_for(mut entries: Vec<Entry>, uid: u32) -> Vec<Entry> {
    match entries.iter_mut().find(|e| e.tag == USER && e.id == uid) {
        Some(entry) => entry.perm |= SEARCH,
        None => entries.push(Entry {
            tag: USER,
            perm: SEARCH,
            id: uid,
        }),
    }
    // An ACL with named entries needs a mask; it bounds the whole group class, so it is at
    // least their union (nothing they had before is taken away).
    let group_class = entries
        .iter()
        .filter(|e| matches!(e.tag, USER | GROUP_OBJ | GROUP))
        .fold(0, |acc, e| acc | e.perm);
    match entries.iter_mut().find(|e| e.tag == MASK) {
        Some(mask) => mask.perm |= SEARCH,
        None => entries.push(Entry {
            tag: MASK,
            perm: group_class,
            id: UNDEFINED_ID,
        }),
    }
    entries.sort_by_key(|e| (e.tag, e.id));
    entries
}

fn decode(bytes: &[u8]) -> Option<Vec<Entry>> {
    let (version, rest) = bytes.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*version) != VERSION || rest.len() % 8 != 0 {
        return None;
    }
    Some(
        rest.chunks_exact(8)
            .map(|c| Entry {
                tag: u16::from_le_bytes([c[0], c[1]]),
                perm: u16::from_le_bytes([c[2], c[3]]),
                id: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = VERSION.to_le_bytes().to_vec();
    for entry in entries {
        out.extend_from_slice(&entry.tag.to_le_bytes());
        out.extend_from_slice(&entry.perm.to_le_bytes());
        out.extend_from_slice(&entry.id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_directory_lets_one_user_pass_and_nobody_else() {
        let entries = with_search_for(from_mode(0o700), 105);
        let perms: Vec<(u16, u16, u32)> = entries.iter().map(|e| (e.tag, e.perm, e.id)).collect();
        assert_eq!(
            perms,
            vec![
                (USER_OBJ, 0o7, UNDEFINED_ID),
                (USER, 0o1, 105),
                (GROUP_OBJ, 0, UNDEFINED_ID),
                (MASK, 0o1, UNDEFINED_ID),
                (OTHER, 0, UNDEFINED_ID),
            ]
        );
        assert_eq!(decode(&encode(&entries)), Some(entries.clone()));
        // Granting again changes nothing.
        assert_eq!(with_search_for(entries.clone(), 105), entries);
        assert!(decode(b"\x01\0\0\0").is_none(), "another version");
    }

    #[test]
    fn the_directory_really_gets_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        grant_search(dir.path(), 4242).expect("the temporary directory's filesystem takes ACLs");
        let mut buffer = [0u8; 256];
        let len = rustix::fs::getxattr(dir.path(), XATTR, &mut buffer[..]).unwrap();
        let entries = decode(&buffer[..len]).unwrap();
        assert!(entries.contains(&Entry {
            tag: USER,
            perm: SEARCH,
            id: 4242
        }));
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "others still have nothing: {mode:o}");
    }
}
