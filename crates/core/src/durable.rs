//! Files written so that a crash, a kill or a full disk leaves either the
//! old content or the new, never a part: a temporary file beside the
//! target, made durable, renamed over it, and (on Unix) the directory
//! synced so the rename itself survives.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The directory holding `path` (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes the entries of `path`'s directory (a creation, a rename) durable.
#[cfg(unix)]
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(directory_of(path))?.sync_all()
}

/// Windows cannot open a directory as a file to flush it (`File::open`
/// fails on one). There the rename is `MoveFileExW` with
/// `MOVEFILE_REPLACE_EXISTING`, which NTFS journals as one step: after a
/// crash of the process or of the machine the target holds the old content
/// or the new, never a part; only a power cut within the log's commit
/// interval can bring back the old content, whole.
#[cfg(not(unix))]
pub fn sync_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Replaces `path` with what `write` puts in the temporary file it is
/// given; `write` must make that file durable before it returns. When
/// anything fails (a full disk), the temporary file is removed and `path`
/// keeps its old content.
pub fn replace_with(path: &Path, write: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = directory_of(path).join(format!(".{name}.tmp"));
    let replaced = write(&tmp).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = replaced {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path)
}

/// Replaces `path` with what `fill` writes through a buffer.
pub fn replace(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    replace_with(path, |tmp| {
        let file = File::create(tmp)?;
        let mut out = BufWriter::with_capacity(256 * 1024, &file);
        fill(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "old").unwrap();
        replace(&path, |out| out.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let failed = replace(&path, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"], "no temporary file left behind");
    }
}
