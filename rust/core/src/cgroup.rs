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
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

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
///
/// Every directory is a prefix of the innermost one (the walk goes from the
/// process's cgroup up to the mount point), so one path is kept and the
/// others are its prefixes: no path is built per level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitDirs {
    pub version: Version,
    /// The innermost directory.
    leaf: Vec<u8>,
    /// The length of the outermost directory's path (the mount point's).
    top: usize,
}

impl LimitDirs {
    /// The directories as byte paths, innermost first.
    pub fn dirs(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut next = Some(self.leaf.len());
        std::iter::from_fn(move || {
            let end = next?;
            next = (end > self.top).then(|| {
                // Components hold no `/`; a cut below `top` is the `/` of a
                // mount point that ends in one (root `/`, mount point `/`).
                memchr::memrchr(b'/', &self.leaf[..end]).map_or(self.top, |cut| cut.max(self.top))
            });
            Some(&self.leaf[..end])
        })
    }

    /// [`LimitDirs::dirs`] as paths.
    pub fn dir_paths(&self) -> impl Iterator<Item = &Path> + '_ {
        self.dirs().map(|dir| Path::new(OsStr::from_bytes(dir)))
    }
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
    let root = root.as_os_str().as_bytes();
    let membership = sysread::with_small_file_in(root, b"proc/self/cgroup", |cgroup| {
        parse_membership(cgroup, controller)
    })
    .ok()??;
    let mountinfo = sysread::read_whole_in(root, b"proc/self/mountinfo").ok()?;
    let mount = choose_mount_in(cgroup_lines(&mountinfo), &membership, controller)?;

    // `root` joined with the mount point's components, then the path's
    // components below the mount root, as `PathBuf::push` joins them.
    let mut leaf =
        Vec::with_capacity(root.len() + mount.mount_point.len() + membership.path.len() + 2);
    leaf.extend_from_slice(root);
    let push = |leaf: &mut Vec<u8>, component: &[u8]| {
        if leaf.last().is_some_and(|&b| b != b'/') {
            leaf.push(b'/');
        }
        leaf.extend_from_slice(component);
    };
    for component in components(&mount.mount_point) {
        push(&mut leaf, component);
    }
    let top = leaf.len();
    // `choose_mount` checked that the mount root prefixes the path.
    let below_root = components(&mount.root).count();
    let mut path = components(&membership.path);
    for _ in 0..below_root {
        path.next()?;
    }
    for component in path {
        push(&mut leaf, component);
    }
    // The leaf is the process's own cgroup directory; it must exist.
    if !sysread::is_dir(&leaf) {
        return None;
    }
    Some(LimitDirs {
        version: membership.version,
        leaf,
        top,
    })
}

/// Step 5: `/sys/fs/cgroup` itself on v2 hosts (`cgroup.controllers` exists),
/// else the controller's v1 directory.
fn fixed_dirs(root: &Path, controller: Controller) -> LimitDirs {
    let cgroup_root = root.join("sys").join("fs").join("cgroup");
    let (version, dir) = if cgroup_root.join("cgroup.controllers").exists() {
        (Version::V2, cgroup_root)
    } else {
        (Version::V1, cgroup_root.join(controller.v1_fixed_dir()))
    };
    let leaf = dir.into_os_string().into_vec();
    LimitDirs {
        version,
        top: leaf.len(),
        leaf,
    }
}

/// Read the value file `name` in `dir` and call `f` with its content stripped
/// of whitespace at both ends; `None` when it can't be read (missing,
/// `EACCES`, `EISDIR`, any other error). Nothing is copied.
pub fn with_value_in<T>(dir: &[u8], name: &[u8], f: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
    sysread::with_small_file_in(dir, name, |content| f(strip(content)))
        .ok()
        .flatten()
}

/// The mountinfo lines that can be of a cgroup hierarchy, parsed in place:
/// only lines holding `cgroup` (the `cgroup`/`cgroup2` type is one of their
/// fields) are split into fields; the others are skipped at memory speed.
fn cgroup_lines(mountinfo: &[u8]) -> impl Iterator<Item = MountFields<'_>> {
    let finder = memchr::memmem::Finder::new(b"cgroup");
    let mut rest = mountinfo;
    std::iter::from_fn(move || loop {
        let hit = finder.find(rest)?;
        let start = memchr::memrchr(b'\n', &rest[..hit]).map_or(0, |newline| newline + 1);
        let end = memchr::memchr(b'\n', &rest[hit..]).map_or(rest.len(), |newline| hit + newline);
        let line = &rest[start..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        if let Some(fields) = parse_mountinfo_fields(line) {
            return Some(fields);
        }
    })
}

/// Split file content into lines at `\n` only, as the kernel writes them.
fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    crate::bytescan::split(content, b'\n')
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
    parse_mountinfo_fields(line).map(|fields| fields.to_mount())
}

/// A mountinfo line's fields as slices of the line, still escaped.
#[derive(Clone, Copy, Debug)]
struct MountFields<'a> {
    root: &'a [u8],
    mount_point: &'a [u8],
    fstype: &'a [u8],
    super_options: &'a [u8],
}

impl MountFields<'_> {
    fn to_mount(self) -> Mount {
        Mount {
            root: unescape_octal(self.root),
            mount_point: unescape_octal(self.mount_point),
            fstype: self.fstype.to_vec(),
            super_options: self.super_options.to_vec(),
        }
    }
}

/// [`parse_mountinfo_line`] without copying: the same fields, in place.
fn parse_mountinfo_fields(line: &[u8]) -> Option<MountFields<'_>> {
    let mut fields = crate::bytescan::split(line, b' ').filter(|f| !f.is_empty());
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    fields.next()?; // mount options
                    // The optional fields start at index 6; the separator is the first `-`.
    fields.find(|f| *f == b"-")?;
    let fstype = fields.next()?;
    fields.next()?; // source
    let super_options = fields.next()?;
    Some(MountFields {
        root,
        mount_point,
        fstype,
        super_options,
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
        if !of_hierarchy(&mount.fstype, &mount.super_options, membership, controller) {
            continue;
        }
        let Some(length) = root_length(&mount.root, &path) else {
            continue;
        };
        if best.is_none_or(|(_, best_length)| length > best_length) {
            best = Some((mount, length));
        }
    }
    best.map(|(mount, _)| mount)
}

/// [`choose_mount`] over lines parsed in place; the chosen one unescaped.
fn choose_mount_in<'a>(
    mounts: impl Iterator<Item = MountFields<'a>>,
    membership: &Membership,
    controller: Controller,
) -> Option<Mount> {
    let path: Vec<&[u8]> = components(&membership.path).collect();
    let mut best: Option<(MountFields<'a>, usize)> = None;
    for mount in mounts {
        // The type and options never hold escapes worth undoing for this
        // test: `cgroup`, `cgroup2` and the controller names have no space,
        // tab, newline or backslash, so an escaped field never equals them.
        if !of_hierarchy(mount.fstype, mount.super_options, membership, controller) {
            continue;
        }
        let root = unescape_if_needed(mount.root);
        let Some(length) = root_length(&root, &path) else {
            continue;
        };
        if best.is_none_or(|(_, best_length)| length > best_length) {
            best = Some((mount, length));
        }
    }
    best.map(|(mount, _)| mount.to_mount())
}

fn of_hierarchy(
    fstype: &[u8],
    super_options: &[u8],
    membership: &Membership,
    controller: Controller,
) -> bool {
    match membership.version {
        Version::V1 => {
            fstype == b"cgroup"
                && super_options
                    .split(|&b| b == b',')
                    .any(|o| o == controller.name())
        }
        Version::V2 => fstype == b"cgroup2",
    }
}

/// The number of components of `root` when they prefix `path`, else `None`.
fn root_length(root: &[u8], path: &[&[u8]]) -> Option<usize> {
    let mut length = 0;
    for component in components(root) {
        if path.get(length) != Some(&component) {
            return None;
        }
        length += 1;
    }
    Some(length)
}

fn unescape_if_needed(field: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if field.contains(&b'\\') {
        std::borrow::Cow::Owned(unescape_octal(field))
    } else {
        std::borrow::Cow::Borrowed(field)
    }
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
    fields(bytes).collect()
}

/// [`split_fields`] without collecting.
pub fn fields(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|b| WHITESPACE.contains(b))
        .filter(|f| !f.is_empty())
}

/// A number in a limit file: ASCII `-?[0-9]+` whose value fits an `i64`.
/// Anything else (`+5`, `1.5`, `0x10`, non-ASCII digits, too large) is `None`.
pub fn parse_number(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, field),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated negatively, so that `i64::MIN` fits.
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_sub(i64::from(digit - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
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
        assert_eq!(found.version, Version::V2);
        assert_eq!(
            found.dir_paths().collect::<Vec<_>>(),
            vec![base.join("pod/ctr"), base.join("pod"), base.clone()],
        );
    }

    #[test]
    fn limit_dirs_falls_back_to_fixed_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let base = root.join("sys/fs/cgroup");
        let found = limit_dirs(root, Controller::Memory);
        assert_eq!(found.version, Version::V1);
        assert_eq!(
            found.dir_paths().collect::<Vec<_>>(),
            vec![base.join("memory")]
        );
        write(root, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
        let found = limit_dirs(root, Controller::Cpu);
        assert_eq!(found.version, Version::V2);
        assert_eq!(found.dir_paths().collect::<Vec<_>>(), vec![base.clone()]);
        // A resolvable hierarchy whose directory is missing still falls back.
        write(root, "proc/self/cgroup", "0::/gone\n");
        write(
            root,
            "proc/self/mountinfo",
            "30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(
            limit_dirs(root, Controller::Cpu)
                .dir_paths()
                .collect::<Vec<_>>(),
            vec![base]
        );
    }

    #[test]
    fn dirs_are_the_leaf_and_its_prefixes_down_to_the_mount_point() {
        let dirs = |leaf: &str, top: usize| {
            let found = LimitDirs {
                version: Version::V1,
                leaf: leaf.as_bytes().to_vec(),
                top,
            };
            found
                .dirs()
                .map(|dir| String::from_utf8(dir.to_vec()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            dirs("/sys/fs/cgroup/memory/a/b", "/sys/fs/cgroup/memory".len()),
            [
                "/sys/fs/cgroup/memory/a/b",
                "/sys/fs/cgroup/memory/a",
                "/sys/fs/cgroup/memory"
            ]
        );
        // Root `/` with a mount point `/`: the outermost directory is `/`.
        assert_eq!(dirs("/a/b", 1), ["/a/b", "/a", "/"]);
        assert_eq!(dirs("/", 1), ["/"]);
        // An empty root and a relative mount point.
        assert_eq!(dirs("cg/x", 2), ["cg/x", "cg"]);
        assert_eq!(dirs("cg", 2), ["cg"]);
    }

    #[test]
    fn only_lines_naming_cgroup_are_parsed() {
        let mountinfo = b"1 0 0:1 / / rw - ext4 /dev/sda rw\n\
            2 1 0:2 / /sys/fs/cgroup/cpu rw shared:3 - cgroup cgroup rw,cpu\n\
            3 1 0:3 / /cgroupish rw - tmpfs tmpfs rw\n\
            4 1 0:4 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        let found: Vec<&[u8]> = cgroup_lines(mountinfo).map(|m| m.fstype).collect();
        assert_eq!(found, [&b"cgroup"[..], b"tmpfs", b"cgroup2"]);
    }
}
