//! Cgroup resolution: which directories hold the limits of this process for
//! one controller, and how a limit file's value is read.
//!
//! The rules are `docs/internals.md`, "Cgroup resolution"; the per-level
//! meaning of the values lives with each controller (`cpu`, `memory`).
//! Everything is read under a `root` directory (default `/`) so tests can
//! point it at fixture trees. Paths are handled as bytes: the kernel does not
//! promise UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sysread;

/// The bytes Python's `bytes.strip()` and `bytes.split()` treat as whitespace.
const WHITESPACE: &[u8] = b" \t\n\r\x0b\x0c";

/// A cgroup controller whose limits we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Cpu,
    Memory,
}

impl Controller {
    /// The controller's name in `/proc/self/cgroup` and in mount options.
    fn name(self) -> &'static [u8] {
        match self {
            Controller::Cpu => b"cpu",
            Controller::Memory => b"memory",
        }
    }

    /// The directory of this controller's v1 fixed path under `/sys/fs/cgroup`.
    fn v1_fixed_dir(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Memory => "memory",
        }
    }
}

/// Which cgroup hierarchy format the limit files follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where a controller's limits are read: the directories to read, innermost
/// first, and which files (v1 or v2) they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitDirs {
    pub version: Version,
    pub dirs: Vec<PathBuf>,
}

/// This process's place in one hierarchy, from a line of `/proc/self/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub version: Version,
    pub path: Vec<u8>,
}

/// The fields of a `/proc/self/mountinfo` line that resolution needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The root of the mount inside its file system, unescaped.
    pub root: Vec<u8>,
    /// Where it is mounted, unescaped.
    pub mount_point: Vec<u8>,
    pub fstype: Vec<u8>,
    pub super_options: Vec<u8>,
}

/// Resolve where `controller`'s limits live for this process under `root`.
///
/// On success the directories run from the process's own cgroup up to and
/// including the mount point. When resolution fails the fixed paths are used
/// instead, a single directory with no walk.
pub fn limit_dirs(root: &Path, controller: Controller) -> LimitDirs {
    resolve(root, controller).unwrap_or_else(|| fixed_dirs(root, controller))
}

/// Steps 1-4 of the resolution; `None` means "fall back to the fixed paths".
fn resolve(root: &Path, controller: Controller) -> Option<LimitDirs> {
    let proc_self = root.join("proc").join("self");
    let membership = sysread::with_small_file(&proc_self.join("cgroup"), |cgroup| {
        parse_membership(cgroup, controller)
    })
    .ok()??;
    let mountinfo = sysread::read_whole(&proc_self.join("mountinfo")).ok()?;
    let mounts: Vec<Mount> = lines(&mountinfo).filter_map(parse_mountinfo_line).collect();
    let mount = choose_mount(&mounts, &membership, controller)?;

    let mut mount_dir = root.to_path_buf();
    for component in components(&mount.mount_point) {
        mount_dir.push(OsStr::from_bytes(component));
    }
    let path: Vec<&[u8]> = components(&membership.path).collect();
    // `choose_mount` checked that the mount root prefixes the path.
    let relative = path.get(components(&mount.root).count()..)?;
    let mut dirs = Vec::with_capacity(relative.len() + 1);
    for depth in (0..=relative.len()).rev() {
        let mut dir = mount_dir.clone();
        for component in &relative[..depth] {
            dir.push(OsStr::from_bytes(component));
        }
        dirs.push(dir);
    }
    // `dirs[0]` is the process's own cgroup directory; it must exist.
    if !dirs.first().is_some_and(|leaf| leaf.is_dir()) {
        return None;
    }
    Some(LimitDirs {
        version: membership.version,
        dirs,
    })
}

/// Step 5: `/sys/fs/cgroup` itself on v2 hosts (`cgroup.controllers` exists),
/// else the controller's v1 directory.
fn fixed_dirs(root: &Path, controller: Controller) -> LimitDirs {
    let cgroup_root = root.join("sys").join("fs").join("cgroup");
    if cgroup_root.join("cgroup.controllers").exists() {
        LimitDirs {
            version: Version::V2,
            dirs: vec![cgroup_root],
        }
    } else {
        LimitDirs {
            version: Version::V1,
            dirs: vec![cgroup_root.join(controller.v1_fixed_dir())],
        }
    }
}

/// Split file content into lines at `\n` only, as the kernel writes them.
fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    content.split(|&b| b == b'\n')
}

/// The non-empty `/`-separated components of a path.
fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// Pick the hierarchy of `controller` from `/proc/self/cgroup`: its v1 line if
/// one exists (hybrid hosts: v1 wins), else the `0::` line.
pub fn parse_membership(content: &[u8], controller: Controller) -> Option<Membership> {
    let mut v2_path: Option<&[u8]> = None;
    for line in lines(content) {
        // `id:controllers:path`, split at the first two colons only: the path
        // may contain colons.
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers
            .split(|&b| b == b',')
            .any(|c| c == controller.name())
        {
            return Some(Membership {
                version: Version::V1,
                path: path.to_vec(),
            });
        }
        if v2_path.is_none() && id == b"0" && controllers.is_empty() {
            v2_path = Some(path);
        }
    }
    v2_path.map(|path| Membership {
        version: Version::V2,
        path: path.to_vec(),
    })
}

/// Parse one `/proc/self/mountinfo` line; `None` for a malformed one.
///
/// Fields: id, parent, major:minor, root, mount point, options, zero or more
/// optional fields, `-`, fstype, source, super options. The kernel separates
/// them with single spaces and escapes spaces inside them as `\040`.
pub fn parse_mountinfo_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .collect();
    // The optional fields start at index 6; the separator is the first `-`.
    let separator = 6 + fields.get(6..)?.iter().position(|f| *f == b"-")?;
    let after = fields.get(separator + 1..separator + 4)?;
    Some(Mount {
        root: unescape_octal(fields[3]),
        mount_point: unescape_octal(fields[4]),
        fstype: after[0].to_vec(),
        super_options: after[2].to_vec(),
    })
}

/// Undo mountinfo's escaping: `\NNN` with three octal digits is one byte.
/// A backslash not followed by three octal digits that fit a byte stays as is.
pub fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            if let Some(digits) = field.get(i + 1..i + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Among the mounts of the membership's hierarchy, the one whose root is a
/// component-wise prefix of the cgroup path; several: the longest root (most
/// components), ties: the first in file order.
pub fn choose_mount<'a>(
    mounts: &'a [Mount],
    membership: &Membership,
    controller: Controller,
) -> Option<&'a Mount> {
    let path: Vec<&[u8]> = components(&membership.path).collect();
    let mut best: Option<(&Mount, usize)> = None;
    for mount in mounts {
        let of_hierarchy = match membership.version {
            Version::V1 => {
                mount.fstype == b"cgroup"
                    && mount
                        .super_options
                        .split(|&b| b == b',')
                        .any(|o| o == controller.name())
            }
            Version::V2 => mount.fstype == b"cgroup2",
        };
        if !of_hierarchy {
            continue;
        }
        let root: Vec<&[u8]> = components(&mount.root).collect();
        if !path.starts_with(&root) {
            continue;
        }
        if best.is_none_or(|(_, length)| root.len() > length) {
            best = Some((mount, root.len()));
        }
    }
    best.map(|(mount, _)| mount)
}

/// A limit file's content stripped of whitespace at both ends, or `None` when
/// it can't be read (missing, `EACCES`, `EISDIR`, any other error).
pub fn read_stripped(path: &Path) -> Option<Vec<u8>> {
    sysread::with_small_file(path, |content| strip(content).to_vec()).ok()
}

/// Python's `bytes.strip()`.
pub fn strip(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !WHITESPACE.contains(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !WHITESPACE.contains(b))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// Python's `bytes.split()`: fields separated by runs of whitespace.
pub fn split_fields(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|b| WHITESPACE.contains(b))
        .filter(|f| !f.is_empty())
        .collect()
}

/// A number in a limit file: ASCII `-?[0-9]+` whose value fits an `i64`.
/// Anything else (`+5`, `1.5`, `0x10`, non-ASCII digits, too large) is `None`.
pub fn parse_number(field: &[u8]) -> Option<i64> {
    let digits = field.strip_prefix(b"-").unwrap_or(field);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Only ASCII remains, so this is valid UTF-8; `parse` checks the range.
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(version: Version, path: &str) -> Membership {
        Membership {
            version,
            path: path.as_bytes().to_vec(),
        }
    }

    fn mount(root: &str, mount_point: &str, fstype: &str, super_options: &str) -> Mount {
        Mount {
            root: root.as_bytes().to_vec(),
            mount_point: mount_point.as_bytes().to_vec(),
            fstype: fstype.as_bytes().to_vec(),
            super_options: super_options.as_bytes().to_vec(),
        }
    }

    #[test]
    fn membership_prefers_v1_line_of_the_controller() {
        let content = b"12:cpuset:/a\n4:cpu,cpuacct:/b\n0::/c\n";
        assert_eq!(
            parse_membership(content, Controller::Cpu),
            Some(membership(Version::V1, "/b"))
        );
        assert_eq!(
            parse_membership(content, Controller::Memory),
            Some(membership(Version::V2, "/c"))
        );
    }

    #[test]
    fn membership_matches_controller_names_exactly() {
        let content = b"3:cpuset:/a\n2:cpuacct:/b\n1:name=systemd:/c\n";
        assert_eq!(parse_membership(content, Controller::Cpu), None);
        let content = b"3:cpuacct,cpu:/a\n";
        assert_eq!(
            parse_membership(content, Controller::Cpu),
            Some(membership(Version::V1, "/a"))
        );
    }

    #[test]
    fn membership_splits_at_the_first_two_colons_only() {
        let content = b"0::/a:b:c";
        assert_eq!(
            parse_membership(content, Controller::Cpu),
            Some(membership(Version::V2, "/a:b:c"))
        );
    }

    #[test]
    fn membership_v2_line_needs_id_zero_and_no_controllers() {
        assert_eq!(parse_membership(b"1::/a\n", Controller::Cpu), None);
        assert_eq!(parse_membership(b"0:x:/a\n", Controller::Cpu), None);
        assert_eq!(parse_membership(b"garbage\n\n", Controller::Cpu), None);
        assert_eq!(parse_membership(b"", Controller::Memory), None);
    }

    #[test]
    fn mountinfo_line_with_any_number_of_optional_fields() {
        let none = b"30 24 0:26 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate";
        let one = b"30 24 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate";
        let several =
            b"30 24 0:26 / /sys/fs/cgroup rw shared:4 master:1 unbindable - cgroup2 none rw,nsdelegate";
        for line in [&none[..], &one[..], &several[..]] {
            assert_eq!(
                parse_mountinfo_line(line),
                Some(mount("/", "/sys/fs/cgroup", "cgroup2", "rw,nsdelegate"))
            );
        }
    }

    #[test]
    fn mountinfo_malformed_lines_are_none() {
        assert_eq!(parse_mountinfo_line(b""), None);
        assert_eq!(parse_mountinfo_line(b"garbage"), None);
        // No separator.
        assert_eq!(
            parse_mountinfo_line(b"30 24 0:26 / /sys/fs/cgroup rw shared:4 cgroup2 cgroup2 rw"),
            None
        );
        // Fewer than three fields after the separator.
        assert_eq!(
            parse_mountinfo_line(b"30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2"),
            None
        );
        // The separator before the optional fields' position.
        assert_eq!(
            parse_mountinfo_line(b"30 24 0:26 / - cgroup2 cgroup2 rw"),
            None
        );
    }

    #[test]
    fn mountinfo_root_and_mount_point_are_unescaped() {
        let line = br"30 24 0:26 /my\040pods /mnt/cg\040two\134x rw - cgroup2 cgroup2 rw";
        assert_eq!(
            parse_mountinfo_line(line),
            Some(mount("/my pods", "/mnt/cg two\\x", "cgroup2", "rw"))
        );
    }

    #[test]
    fn unescape_octal_leaves_other_backslashes() {
        assert_eq!(unescape_octal(br"a\040b"), b"a b");
        assert_eq!(unescape_octal(br"\011\012\134"), b"\t\n\\");
        assert_eq!(unescape_octal(br"a\04"), br"a\04");
        assert_eq!(unescape_octal(br"a\08x"), br"a\08x");
        assert_eq!(unescape_octal(br"\400"), br"\400");
        assert_eq!(unescape_octal(br"\377"), b"\xff");
        assert_eq!(unescape_octal(br"\\040"), b"\\ ");
        assert_eq!(unescape_octal(b"\\"), b"\\");
    }

    #[test]
    fn choose_mount_is_component_wise_longest_then_first() {
        let mounts = [
            mount("/user", "/a", "cgroup2", "rw"),
            mount("/", "/b", "cgroup2", "rw"),
            mount("/user.slice", "/c", "cgroup2", "rw"),
            mount("/user.slice/", "/d", "cgroup2", "rw"),
            mount("/user.slice/x", "/e", "cgroup", "rw,cpu"),
        ];
        let v2 = membership(Version::V2, "/user.slice/x");
        let chosen = choose_mount(&mounts, &v2, Controller::Cpu).map(|m| &m.mount_point);
        assert_eq!(chosen, Some(&b"/c".to_vec()));
        let v1 = membership(Version::V1, "/user.slice/x/y");
        let chosen = choose_mount(&mounts, &v1, Controller::Cpu).map(|m| &m.mount_point);
        assert_eq!(chosen, Some(&b"/e".to_vec()));
        assert_eq!(choose_mount(&mounts, &v1, Controller::Memory), None);
        let outside = membership(Version::V1, "/user.slice");
        assert_eq!(choose_mount(&mounts, &outside, Controller::Cpu), None);
    }

    #[test]
    fn v1_mount_needs_the_controller_among_super_options() {
        let mounts = [
            mount("/", "/cpuset", "cgroup", "rw,cpuset"),
            mount("/", "/cpu", "cgroup", "rw,cpuacct,cpu"),
        ];
        let v1 = membership(Version::V1, "/a");
        let chosen = choose_mount(&mounts, &v1, Controller::Cpu).map(|m| &m.mount_point);
        assert_eq!(chosen, Some(&b"/cpu".to_vec()));
    }

    #[test]
    fn strip_and_split_use_python_bytes_whitespace() {
        assert_eq!(strip(b" \t\n\r\x0b\x0c1 2\x0c\x0b\r\n\t "), b"1 2");
        assert_eq!(strip(b"\x1c1\x1c"), b"\x1c1\x1c");
        assert_eq!(strip(b"  \n"), b"");
        assert_eq!(strip(b""), b"");
        assert_eq!(
            split_fields(b" max\t\x0b100000 \n"),
            vec![&b"max"[..], b"100000"]
        );
        assert_eq!(split_fields(b"1\x1c2"), vec![&b"1\x1c2"[..]]);
        assert!(split_fields(b" \n").is_empty());
    }

    #[test]
    fn parse_number_accepts_only_ascii_integers_in_i64() {
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"-0"), Some(0));
        assert_eq!(parse_number(b"-1"), Some(-1));
        assert_eq!(parse_number(b"007"), Some(7));
        assert_eq!(parse_number(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_number(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+5",
            b"1.5",
            b"0x10",
            b"1e9",
            b"1_000",
            b" 1",
            b"--1",
            b"9223372036854775808",
            b"-9223372036854775809",
            "\u{0661}".as_bytes(),
            b"max",
        ] {
            assert_eq!(
                parse_number(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn read_stripped_of_missing_or_directory_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_stripped(&dir.path().join("missing")), None);
        assert_eq!(read_stripped(dir.path()), None);
        std::fs::write(dir.path().join("value"), b" 42\n").unwrap();
        assert_eq!(
            read_stripped(&dir.path().join("value")),
            Some(b"42".to_vec())
        );
    }

    fn write(root: &Path, relative: &str, content: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn limit_dirs_walks_from_the_cgroup_to_the_mount_point() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "proc/self/cgroup", "0::/kubepods/pod/ctr\n");
        write(
            root,
            "proc/self/mountinfo",
            "30 24 0:26 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        std::fs::create_dir_all(root.join("sys/fs/cgroup/pod/ctr")).unwrap();
        let found = limit_dirs(root, Controller::Cpu);
        let base = root.join("sys/fs/cgroup");
        assert_eq!(
            found,
            LimitDirs {
                version: Version::V2,
                dirs: vec![base.join("pod/ctr"), base.join("pod"), base.clone()],
            }
        );
    }

    #[test]
    fn limit_dirs_falls_back_to_fixed_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let base = root.join("sys/fs/cgroup");
        assert_eq!(
            limit_dirs(root, Controller::Memory),
            LimitDirs {
                version: Version::V1,
                dirs: vec![base.join("memory")],
            }
        );
        write(root, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
        assert_eq!(
            limit_dirs(root, Controller::Cpu),
            LimitDirs {
                version: Version::V2,
                dirs: vec![base.clone()],
            }
        );
        // A resolvable hierarchy whose directory is missing still falls back.
        write(root, "proc/self/cgroup", "0::/gone\n");
        write(
            root,
            "proc/self/mountinfo",
            "30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(limit_dirs(root, Controller::Cpu).dirs, vec![base]);
    }
}
