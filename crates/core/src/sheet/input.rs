//! Where a sheet's bytes come from, and what is kept of them as they pass:
//! the fingerprint a checkpoint keeps (size and SHA-256), and for input that
//! can be read only once (standard input, a FIFO, a device) a copy.
//!
//! Both are made while the sheet is read, not before: hashing a whole input
//! before reading it made `import /dev/urandom` hash forever, where the
//! reader stops at the first bytes that are not a sheet.

use aws_lc_rs::digest::{Context, SHA256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The fingerprint of an input, known once it has been read to its end.
#[derive(Debug, Clone, Default)]
pub struct Fingerprint(Arc<Mutex<Option<String>>>);

impl Fingerprint {
    /// `size:sha256hex`, as [`super::fingerprint`] gives; `None` until the
    /// input has been read to its end.
    pub fn get(&self) -> Option<String> {
        self.0.lock().expect("not poisoned").clone()
    }

    pub(super) fn set(&self, value: String) {
        *self.0.lock().expect("not poisoned") = Some(value);
    }
}

/// Whether `path` can be read more than once: `-` (standard input), FIFOs,
/// sockets and devices cannot.
pub fn is_stream(path: &Path) -> bool {
    path == Path::new("-") || std::fs::metadata(path).is_ok_and(|m| !m.is_file())
}

/// Passes reads through, hashing them and copying them to a file if asked;
/// at the end of the input it syncs the copy and sets the fingerprint.
pub struct Tee<R> {
    inner: R,
    hasher: Option<Context>,
    size: u64,
    copy: Option<(PathBuf, BufWriter<File>)>,
    fingerprint: Fingerprint,
}

impl<R: Read> Tee<R> {
    /// `hash`: take the fingerprint; `copy`: the file to create and write
    /// every byte to.
    pub fn new(inner: R, hash: bool, copy: Option<&Path>) -> io::Result<Tee<R>> {
        let copy = match copy {
            Some(path) => Some((
                path.to_owned(),
                BufWriter::with_capacity(
                    256 * 1024,
                    File::create(path).map_err(|e| copy_error(path, e))?,
                ),
            )),
            None => None,
        };
        Ok(Tee {
            inner,
            hasher: hash.then(|| Context::new(&SHA256)),
            size: 0,
            copy,
            fingerprint: Fingerprint::default(),
        })
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint.clone()
    }
}

fn copy_error(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&buf[..n]);
            }
            self.size += n as u64;
            if let Some((path, out)) = &mut self.copy {
                out.write_all(&buf[..n]).map_err(|e| copy_error(path, e))?;
            }
        } else {
            if let Some((path, out)) = self.copy.take() {
                let file = out
                    .into_inner()
                    .map_err(|e| copy_error(&path, e.into_error()))?;
                file.sync_all().map_err(|e| copy_error(&path, e))?;
            }
            if let Some(hasher) = self.hasher.take() {
                self.fingerprint
                    .set(format!("{}:{}", self.size, hex::encode(hasher.finish())));
            }
        }
        Ok(n)
    }
}

/// Reads up to `limit` bytes (fewer only at the end of the input), however
/// the input hands them out.
pub fn read_head<R: Read>(input: &mut R, limit: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(limit);
    input.take(limit as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_and_copy_match_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, b"telephoneNumber\n+1\n").unwrap();
        let copy = dir.path().join("copy.csv");
        let mut tee = Tee::new(File::open(&path).unwrap(), true, Some(&copy)).unwrap();
        let fingerprint = tee.fingerprint();
        let mut small = [0u8; 3];
        assert_eq!(tee.read(&mut small).unwrap(), 3);
        assert_eq!(fingerprint.get(), None);
        io::copy(&mut tee, &mut io::sink()).unwrap();
        assert_eq!(
            fingerprint.get(),
            Some(super::super::fingerprint(&path).unwrap())
        );
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&path).unwrap());
        assert!(is_stream(Path::new("-")));
        assert!(!is_stream(&path));
    }
}
