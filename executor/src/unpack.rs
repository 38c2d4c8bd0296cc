//! Safe extraction of `.tar.gz`/`.tgz` and `.zip` archives.
//!
//! No entry may land outside the destination: entries with absolute paths or
//! `..` components are refused, entries are never written through a directory
//! that resolves outside, and symbolic links must be relative and point
//! inside (checked both by their text and, after extraction, by resolving
//! them). Device files and FIFOs are refused. The first bad entry stops the
//! extraction with an error naming it (the caller unpacks into a temporary
//! directory of the cache and removes it, and runs nothing).
//!
//! [`link_tree`] then recreates a checked tree in a task's destination with
//! hard links, never writing through a link it finds there.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use executor_protocol::ArchiveKind;

use crate::error::Error;

/// Unpacks `archive` into `dest` (created if missing). `label` names the
/// archive in errors (its URL).
pub fn unpack(archive: &Path, kind: ArchiveKind, dest: &Path, label: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dest).map_err(Error::io("create destination", dest))?;
    let root = dest
        .canonicalize()
        .map_err(Error::io("resolve destination", dest))?;
    let mut ctx = Unpacker {
        root,
        label,
        links: Vec::new(),
    };
    match kind {
        ArchiveKind::TarGz => ctx.tar_gz(archive)?,
        ArchiveKind::Zip => ctx.zip(archive)?,
    }
    ctx.check_links()
}

struct Unpacker<'a> {
    /// The destination, resolved.
    root: PathBuf,
    label: &'a str,
    /// Symbolic links created, to be checked once everything is in place.
    links: Vec<PathBuf>,
}

impl Unpacker<'_> {
    fn refuse(&self, reason: String) -> Error {
        Error::UnsafeArchive {
            archive: self.label.to_owned(),
            reason,
        }
    }

    /// The path under the root for an entry name, refusing unsafe names.
    fn target(&self, name: &Path) -> Result<PathBuf, Error> {
        let mut clean = PathBuf::new();
        for component in name.components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(
                        self.refuse(format!("entry \"{}\" contains \"..\"", name.display()))
                    );
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(
                        self.refuse(format!("entry \"{}\" has an absolute path", name.display()))
                    );
                }
            }
        }
        Ok(self.root.join(clean))
    }

    /// Creates the parent directory of `target` and makes sure it resolves
    /// inside the root (a symlink planted by an earlier entry could redirect it).
    fn prepare_parent(&self, target: &Path, name: &Path) -> Result<(), Error> {
        let Some(parent) = target.parent() else {
            return Ok(());
        };
        std::fs::create_dir_all(parent).map_err(|e| {
            self.refuse(format!(
                "cannot create the directory of \"{}\": {e}",
                name.display()
            ))
        })?;
        let resolved = parent
            .canonicalize()
            .map_err(Error::io("resolve directory", parent))?;
        if !resolved.starts_with(&self.root) {
            return Err(self.refuse(format!(
                "entry \"{}\" would be written through a link that leaves the destination",
                name.display()
            )));
        }
        Ok(())
    }

    /// Refuses a link target that is absolute or, read from the link's own
    /// directory, leaves the root.
    fn check_link_text(&self, link: &Path, target: &Path, name: &Path) -> Result<(), Error> {
        if target.is_absolute() {
            return Err(self.refuse(format!(
                "link \"{}\" points to the absolute path \"{}\"",
                name.display(),
                target.display()
            )));
        }
        let mut at: Vec<Component> = link
            .parent()
            .unwrap_or(&self.root)
            .strip_prefix(&self.root)
            .unwrap_or(Path::new(""))
            .components()
            .collect();
        for component in target.components() {
            match component {
                // The guard climbs one level; nothing left to climb means outside.
                Component::ParentDir if at.pop().is_none() => {
                    return Err(self.refuse(format!(
                        "link \"{}\" points outside the destination (\"{}\")",
                        name.display(),
                        target.display()
                    )));
                }
                Component::ParentDir => {}
                Component::Normal(_) => at.push(component),
                _ => {}
            }
        }
        Ok(())
    }

    fn tar_gz(&mut self, archive: &Path) -> Result<(), Error> {
        let file = File::open(archive).map_err(Error::io("open archive", archive))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let entries = tar
            .entries()
            .map_err(|e| self.refuse(format!("not a tar.gz archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.refuse(format!("corrupt archive: {e}")))?;
            let name = entry
                .path()
                .map_err(|e| self.refuse(format!("bad entry name: {e}")))?
                .into_owned();
            let target = self.target(&name)?;
            if target == self.root {
                continue;
            }
            self.prepare_parent(&target, &name)?;
            let kind = entry.header().entry_type();
            if kind.is_symlink() {
                let link = entry
                    .link_name()
                    .map_err(|e| self.refuse(format!("bad link in \"{}\": {e}", name.display())))?
                    .ok_or_else(|| {
                        self.refuse(format!("link \"{}\" has no target", name.display()))
                    })?
                    .into_owned();
                self.check_link_text(&target, &link, &name)?;
                remove_existing(&target);
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(Error::io("create symlink", &target))?;
                self.links.push(target);
            } else if kind.is_hard_link() {
                let link = entry
                    .link_name()
                    .map_err(|e| self.refuse(format!("bad link in \"{}\": {e}", name.display())))?
                    .ok_or_else(|| {
                        self.refuse(format!("link \"{}\" has no target", name.display()))
                    })?
                    .into_owned();
                // Hard link names are relative to the archive root, not the link.
                let source = self.target(&link)?;
                let resolved = source.canonicalize().map_err(|e| {
                    self.refuse(format!(
                        "hard link \"{}\" to \"{}\": {e}",
                        name.display(),
                        link.display()
                    ))
                })?;
                if !resolved.starts_with(&self.root) {
                    return Err(self.refuse(format!(
                        "hard link \"{}\" points outside the destination",
                        name.display()
                    )));
                }
                remove_existing(&target);
                std::fs::hard_link(&resolved, &target)
                    .map_err(Error::io("create hard link", &target))?;
            } else if kind.is_dir() || kind.is_file() || kind == tar::EntryType::Continuous {
                if !kind.is_dir() {
                    remove_existing(&target);
                }
                entry.set_preserve_mtime(true);
                entry.set_unpack_xattrs(false);
                entry.unpack(&target).map_err(|e| {
                    self.refuse(format!("cannot unpack \"{}\": {e}", name.display()))
                })?;
            } else if kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname()
                || kind.is_gnu_longlink()
            {
                // Metadata records; the tar reader already applied them.
            } else {
                return Err(self.refuse(format!(
                    "entry \"{}\" is a special file ({kind:?}), which is not allowed",
                    name.display()
                )));
            }
        }
        Ok(())
    }

    fn zip(&mut self, archive: &Path) -> Result<(), Error> {
        let file = File::open(archive).map_err(Error::io("open archive", archive))?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| self.refuse(format!("not a zip archive: {e}")))?;
        for i in 0..zip.len() {
            let mut entry = zip
                .by_index(i)
                .map_err(|e| self.refuse(format!("corrupt archive: {e}")))?;
            // The raw name, so that "../x" is refused rather than silently renamed.
            let name = PathBuf::from(entry.name());
            let target = self.target(&name)?;
            if target == self.root {
                continue;
            }
            self.prepare_parent(&target, &name)?;
            let mode = entry.unix_mode();
            if entry.is_symlink() {
                let mut link = String::new();
                entry
                    .read_to_string(&mut link)
                    .map_err(|e| self.refuse(format!("bad link \"{}\": {e}", name.display())))?;
                let link = PathBuf::from(link);
                self.check_link_text(&target, &link, &name)?;
                remove_existing(&target);
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(Error::io("create symlink", &target))?;
                self.links.push(target);
            } else if entry.is_dir() {
                std::fs::create_dir_all(&target).map_err(Error::io("create directory", &target))?;
            } else {
                remove_existing(&target);
                let mut out = File::create(&target).map_err(Error::io("create file", &target))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| {
                    self.refuse(format!("cannot unpack \"{}\": {e}", name.display()))
                })?;
                if let Some(mode) = mode {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(
                        &target,
                        std::fs::Permissions::from_mode(mode & 0o7777),
                    )
                    .map_err(Error::io("set permissions", &target))?;
                }
            }
        }
        Ok(())
    }

    /// Resolves every symlink now that all entries exist; links through other
    /// links could otherwise reach outside while each looks harmless alone.
    fn check_links(&self) -> Result<(), Error> {
        for link in &self.links {
            let shown = link.strip_prefix(&self.root).unwrap_or(link).display();
            match link.canonicalize() {
                Ok(resolved) if resolved.starts_with(&self.root) => {}
                Ok(resolved) => {
                    let _ = std::fs::remove_file(link);
                    return Err(self.refuse(format!(
                        "link \"{shown}\" resolves to \"{}\", outside the destination",
                        resolved.display()
                    )));
                }
                Err(_) => {
                    // Dangling: harmless only if its text cannot climb out once
                    // its target appears.
                    let text = std::fs::read_link(link).unwrap_or_default();
                    if text.components().any(|c| c == Component::ParentDir) {
                        let _ = std::fs::remove_file(link);
                        return Err(self.refuse(format!(
                            "link \"{shown}\" to \"{}\" is dangling and climbs with \"..\"",
                            text.display()
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Recreates the unpacked tree `tree` under `dest` (created if missing):
/// directories are made (never through an existing link), regular files are
/// hard-linked (copied across file systems) and symbolic links recreated with
/// their checked text. `label` names the archive in errors.
pub fn link_tree(tree: &Path, dest: &Path, label: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dest).map_err(Error::io("create destination", dest))?;
    link_dir(tree, dest, Path::new(""), label)
}

fn link_dir(from: &Path, to: &Path, rel: &Path, label: &str) -> Result<(), Error> {
    let entries = std::fs::read_dir(from).map_err(Error::io("read unpacked tree", from))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("read unpacked tree", from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(Error::io("read unpacked tree", &source))?;
        let existing = target.symlink_metadata().ok().map(|m| m.file_type());
        if kind.is_dir() {
            match existing {
                Some(t) if t.is_dir() => {}
                Some(t) if t.is_symlink() => {
                    return Err(Error::UnsafeArchive {
                        archive: label.to_owned(),
                        reason: format!(
                            "directory \"{}\" would be written through an existing link",
                            rel.join(entry.file_name()).display()
                        ),
                    });
                }
                Some(_) => {
                    std::fs::remove_file(&target).map_err(Error::io("replace file", &target))?;
                    std::fs::create_dir(&target).map_err(Error::io("create directory", &target))?;
                }
                None => {
                    std::fs::create_dir(&target).map_err(Error::io("create directory", &target))?
                }
            }
            link_dir(&source, &target, &rel.join(entry.file_name()), label)?;
            let mode = std::fs::metadata(&source)
                .map_err(Error::io("read unpacked tree", &source))?
                .permissions();
            std::fs::set_permissions(&target, mode)
                .map_err(Error::io("set permissions", &target))?;
        } else {
            if existing.is_some_and(|t| t.is_dir()) {
                return Err(Error::UnsafeArchive {
                    archive: label.to_owned(),
                    reason: format!(
                        "\"{}\" is a directory in the destination",
                        rel.join(entry.file_name()).display()
                    ),
                });
            }
            remove_existing(&target);
            if kind.is_symlink() {
                let text = std::fs::read_link(&source).map_err(Error::io("read link", &source))?;
                std::os::unix::fs::symlink(&text, &target)
                    .map_err(Error::io("create symlink", &target))?;
            } else {
                link_file(&source, &target)?;
            }
        }
    }
    Ok(())
}

/// Puts `from` at `to` as a hard link, or as a copy when linking is not
/// possible (another file system).
pub fn link_file(from: &Path, to: &Path) -> Result<(), Error> {
    remove_existing(to);
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(drop)
        .map_err(Error::io("copy artifact", to))
}

/// Removes a file or link at `path` so a later entry replaces it instead of
/// writing through it.
fn remove_existing(path: &Path) {
    if path
        .symlink_metadata()
        .is_ok_and(|m| !m.file_type().is_dir())
    {
        let _ = std::fs::remove_file(path);
    }
}

/// The content of a file, or "" (for tests).
#[cfg(test)]
fn read(path: &Path) -> String {
    let mut s = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    s
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    enum Item<'a> {
        File(&'a str, &'a str),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
    }

    /// Writes a .tar.gz with raw names (the tar builder refuses "..", so the
    /// header bytes are set directly, as an attacker would).
    fn tar_gz(path: &Path, items: &[Item]) {
        let file = File::create(path).expect("create");
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for item in items {
            let mut header = tar::Header::new_gnu();
            let (name, kind, body, link): (&str, tar::EntryType, &str, Option<&str>) = match item {
                Item::File(n, b) => (n, tar::EntryType::Regular, b, None),
                Item::Dir(n) => (n, tar::EntryType::Directory, "", None),
                Item::Symlink(n, t) => (n, tar::EntryType::Symlink, "", Some(t)),
                Item::Hardlink(n, t) => (n, tar::EntryType::Link, "", Some(t)),
            };
            let raw = &mut header.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                let raw = &mut header.as_old_mut().linkname;
                raw[..link.len()].copy_from_slice(link.as_bytes());
            }
            header.set_entry_type(kind);
            header.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            header.set_size(body.len() as u64);
            header.set_cksum();
            builder.append(&header, body.as_bytes()).expect("append");
        }
        builder
            .into_inner()
            .expect("finish tar")
            .finish()
            .expect("finish gz");
    }

    fn zip_file(path: &Path, files: &[(&str, &str)], symlinks: &[(&str, &str)]) {
        let file = File::create(path).expect("create");
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        for (name, body) in files {
            zip.start_file(*name, options).expect("start");
            zip.write_all(body.as_bytes()).expect("write");
        }
        for (name, target) in symlinks {
            zip.add_symlink(*name, *target, options).expect("symlink");
        }
        zip.finish().expect("finish");
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("sandbox/dest");
        let archive = dir.path().join("a.tgz");
        (dir, dest, archive)
    }

    #[test]
    fn tar_gz_with_dirs_files_and_inner_links() {
        let (_dir, dest, archive) = setup();
        tar_gz(
            &archive,
            &[
                Item::Dir("app/"),
                Item::File("app/bin/run.sh", "#!/bin/sh\n"),
                Item::Symlink("app/current", "bin"),
                Item::Symlink("app/bin/up", "../bin/run.sh"),
                Item::Hardlink("app/run2.sh", "app/bin/run.sh"),
            ],
        );
        unpack(&archive, ArchiveKind::TarGz, &dest, "a.tgz").expect("unpack");
        assert_eq!(read(&dest.join("app/current/run.sh")), "#!/bin/sh\n");
        assert_eq!(read(&dest.join("app/bin/up")), "#!/bin/sh\n");
        assert_eq!(read(&dest.join("app/run2.sh")), "#!/bin/sh\n");
    }

    fn refused(items: &[Item], what: &str) {
        let (dir, dest, archive) = setup();
        tar_gz(&archive, items);
        let err = unpack(&archive, ArchiveKind::TarGz, &dest, "evil.tgz").expect_err(what);
        assert!(matches!(err, Error::UnsafeArchive { .. }), "{what}: {err}");
        assert!(!dir.path().join("sandbox/x").exists(), "{what}: escaped");
        assert!(!dir.path().join("x").exists(), "{what}: escaped");
    }

    #[test]
    fn tar_gz_escapes_are_refused() {
        refused(&[Item::File("../x", "pwned")], "dot-dot");
        refused(&[Item::File("a/../../x", "pwned")], "inner dot-dot");
        refused(&[Item::File("/tmp/x", "pwned")], "absolute");
        refused(&[Item::Symlink("link", "/etc")], "absolute symlink");
        refused(&[Item::Symlink("link", "../../x")], "climbing symlink");
        refused(
            &[Item::Symlink("link", ".."), Item::File("link/x", "pwned")],
            "writing through a symlink",
        );
        refused(
            &[
                Item::Dir("s/"),
                Item::Symlink("s/d", ".."),
                Item::Symlink("s/d/x", ".."),
            ],
            "symlink chain",
        );
        refused(&[Item::Hardlink("h", "../x")], "hard link escape");
    }

    #[test]
    fn zip_with_files_and_links() {
        let (dir, dest, _) = setup();
        let archive = dir.path().join("a.zip");
        zip_file(&archive, &[("app/run.sh", "hi")], &[("app/r", "run.sh")]);
        unpack(&archive, ArchiveKind::Zip, &dest, "a.zip").expect("unpack");
        assert_eq!(read(&dest.join("app/r")), "hi");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.join("app/run.sh"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn zip_escapes_are_refused() {
        for (files, links, what) in [
            (vec![("../x", "pwned")], vec![], "dot-dot"),
            (vec![("/x", "pwned")], vec![], "absolute"),
            (vec![], vec![("l", "/etc")], "absolute symlink"),
            (vec![], vec![("l", "../../x")], "climbing symlink"),
        ] {
            let (dir, dest, _) = setup();
            let archive = dir.path().join("evil.zip");
            zip_file(&archive, &files, &links);
            let err = unpack(&archive, ArchiveKind::Zip, &dest, "evil.zip").expect_err(what);
            assert!(matches!(err, Error::UnsafeArchive { .. }), "{what}: {err}");
            assert!(!dir.path().join("sandbox/x").exists(), "{what}");
        }
    }

    #[test]
    fn linked_tree_shares_files_and_never_writes_through_links() {
        use std::os::unix::fs::MetadataExt;
        let (dir, dest, archive) = setup();
        tar_gz(
            &archive,
            &[
                Item::File("app/bin/run.sh", "#!/bin/sh\n"),
                Item::Symlink("app/current", "bin"),
            ],
        );
        let tree = dir.path().join("tree");
        unpack(&archive, ArchiveKind::TarGz, &tree, "a.tgz").expect("unpack");
        link_tree(&tree, &dest, "a.tgz").expect("link");
        let inode = |p: &Path| std::fs::metadata(p).expect("meta").ino();
        assert_eq!(
            inode(&dest.join("app/bin/run.sh")),
            inode(&tree.join("app/bin/run.sh"))
        );
        assert_eq!(
            std::fs::read_link(dest.join("app/current")).expect("link"),
            PathBuf::from("bin")
        );
        // Linking again over the first copy is harmless.
        link_tree(&tree, &dest, "a.tgz").expect("relink");

        let other = dir.path().join("other");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, other.join("app")).expect("symlink");
        let err = link_tree(&tree, &other, "a.tgz").expect_err("through a link");
        assert!(matches!(err, Error::UnsafeArchive { .. }), "{err}");
        assert!(!outside.join("bin").exists());
    }

    #[test]
    fn garbage_is_refused() {
        let (dir, dest, archive) = setup();
        std::fs::write(&archive, b"not an archive").expect("write");
        assert!(unpack(&archive, ArchiveKind::TarGz, &dest, "a").is_err());
        let z = dir.path().join("z.zip");
        std::fs::write(&z, b"not an archive").expect("write");
        assert!(unpack(&z, ArchiveKind::Zip, &dest, "z").is_err());
    }
}
