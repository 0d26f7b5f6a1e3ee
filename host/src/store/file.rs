//! The database file: redb's own file backend, except that new space is written with
//! zeros before redb's first write into it.
//!
//! redb grows its file with `set_len`, which leaves a sparse hole. A page redb later
//! writes into the hole gets its disk block only when it is written back, inside the
//! commit's `fdatasync`, and a block allocated there makes that `fdatasync` also write
//! the inode and the allocation bitmaps, each a separate synchronous I/O. A growing
//! database writes a few fresh pages in nearly every commit, so nearly every commit paid
//! for them. Filling the space in chunks moves that cost to one commit per chunk.

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// How much new space is filled at a time: large enough that block allocation is rare,
/// small enough that the commit which writes it back barely notices.
const CHUNK: u64 = 256 * 1024;

/// A redb storage backend on one file; see the module documentation.
#[derive(Debug)]
pub(super) struct PrefilledFile {
    inner: FileBackend,
    /// The same open file, for writing the zeros.
    file: File,
    filled: Mutex<Filled>,
}

/// Which chunks of the file (`CHUNK` bytes at multiples of `CHUNK`) are known to have
/// no hole: those that start below the length the file had when it was opened, and
/// those filled since. A chunk that is not known to be filled lies wholly in space
/// nobody has written since the open (or since redb last cut the file short), so
/// zeroing it erases nothing.
#[derive(Debug)]
struct Filled {
    /// The file's length when it was opened.
    opened_len: u64,
    /// One bit per chunk, filled since the open.
    bits: Vec<u64>,
}

/// Where chunk `chunk`'s bit is in [`Filled::bits`]: the word, and the mask in it.
fn bit_of(chunk: u64) -> (usize, u64) {
    ((chunk / 64) as usize, 1 << (chunk % 64))
}

impl Filled {
    fn contains(&self, chunk: u64) -> bool {
        let (word, mask) = bit_of(chunk);
        chunk * CHUNK < self.opened_len || self.bits.get(word).is_some_and(|w| w & mask != 0)
    }

    fn insert(&mut self, chunk: u64) {
        let (word, mask) = bit_of(chunk);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= mask;
    }

    /// Forgets the chunks that start at or after `len`: cut off, they are holes when
    /// the file grows again. The chunk `len` falls inside stays filled: its part below
    /// `len` may hold data.
    fn truncate(&mut self, len: u64) {
        let first_gone = len.div_ceil(CHUNK);
        for chunk in first_gone..(self.bits.len() as u64 * 64) {
            let (word, mask) = bit_of(chunk);
            self.bits[word] &= !mask;
        }
        self.opened_len = self.opened_len.min(len);
    }
}

impl PrefilledFile {
    pub(super) fn new(file: File) -> io::Result<PrefilledFile> {
        let opened_len = file.metadata()?.len();
        let zeros_handle = file.try_clone()?;
        let inner = FileBackend::new(file).map_err(io::Error::other)?;
        Ok(PrefilledFile {
            inner,
            file: zeros_handle,
            filled: Mutex::new(Filled {
                opened_len,
                bits: Vec::new(),
            }),
        })
    }

    /// Zeroes every chunk under `offset..end` not known to be filled (up to the file's
    /// length, which zeros must not extend). Called with `filled` locked, so that no
    /// write of redb's can land in a chunk between the check and the zeros.
    fn fill(&self, filled: &mut Filled, offset: u64, end: u64) -> io::Result<()> {
        let mut len = None;
        for chunk in offset / CHUNK..end.div_ceil(CHUNK) {
            if filled.contains(chunk) {
                continue;
            }
            let len = match len {
                Some(len) => len,
                None => *len.insert(self.inner.len()?),
            };
            let start = chunk * CHUNK;
            let stop = (start + CHUNK).min(len);
            if start < stop {
                // A page per write: the page cache sizes its folios by the write, and
                // a later one-page change to a large folio writes the whole folio back.
                for page in (start..stop).step_by(ZEROS.len()) {
                    let n = (stop - page).min(ZEROS.len() as u64) as usize;
                    self.file.write_all_at(&ZEROS[..n], page)?;
                }
            }
            filled.insert(chunk);
        }
        Ok(())
    }
}

/// One page of zeros (redb's default page size).
static ZEROS: [u8; 4096] = [0; 4096];

impl StorageBackend for PrefilledFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut filled = self.filled.lock().expect("filled lock");
        self.inner.set_len(len)?;
        filled.truncate(len);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let end = offset + data.len() as u64;
        // Zeroed first and written over, with the lock held until redb's data is in:
        // zeros written after it would erase it.
        let mut filled = self.filled.lock().expect("filled lock");
        self.fill(&mut filled, offset, end)?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn backend(dir: &tempfile::TempDir) -> (PrefilledFile, std::path::PathBuf) {
        let path = dir.path().join("db");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        (PrefilledFile::new(file).unwrap(), path)
    }

    fn read(backend: &PrefilledFile, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0xAA; len];
        backend.read(offset, &mut out).unwrap();
        out
    }

    #[test]
    fn a_write_into_new_space_fills_its_chunk_and_erases_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = backend(&dir);
        file.set_len(4 * CHUNK).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().blocks(),
            0,
            "a hole at first"
        );

        file.write(CHUNK + 8192, &[1; 4096]).unwrap();
        // The whole second chunk has its blocks (512-byte units), and nothing else.
        assert_eq!(std::fs::metadata(&path).unwrap().blocks(), CHUNK / 512);
        // A second write into the filled chunk does not zero the first one.
        file.write(CHUNK, &[2; 4096]).unwrap();
        assert_eq!(read(&file, CHUNK + 8192, 4096), vec![1; 4096]);
        assert_eq!(read(&file, CHUNK, 4096), vec![2; 4096]);
        assert_eq!(read(&file, CHUNK + 4096, 4096), vec![0; 4096]);
        // A write across two chunks fills both; zeros never pass the file's end.
        file.write(3 * CHUNK - 4096, &[3; 8192]).unwrap();
        assert_eq!(file.len().unwrap(), 4 * CHUNK);
        assert_eq!(std::fs::metadata(&path).unwrap().blocks(), 3 * CHUNK / 512);
        assert_eq!(read(&file, 3 * CHUNK - 4096, 8192), vec![3; 8192]);
    }

    #[test]
    fn data_from_before_the_open_and_before_a_cut_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = backend(&dir);
        file.set_len(2 * CHUNK).unwrap();
        file.write(CHUNK / 2, &[7; 4096]).unwrap();
        drop(file);

        // Reopened, the old length counts as filled: no zeros land on the data.
        let (file, _) = backend(&dir);
        file.set_len(4 * CHUNK).unwrap();
        file.write(CHUNK / 2 + 4096, &[8; 4096]).unwrap();
        assert_eq!(read(&file, CHUNK / 2, 4096), vec![7; 4096]);

        // Cut inside a filled chunk and grown again: the part below the cut survives
        // later writes into the chunk, and the space beyond reads as zeros.
        file.write(3 * CHUNK, &[9; 4096]).unwrap();
        file.set_len(3 * CHUNK + 8192).unwrap();
        file.set_len(4 * CHUNK).unwrap();
        file.write(3 * CHUNK + 65536, &[5; 4096]).unwrap();
        assert_eq!(read(&file, 3 * CHUNK, 4096), vec![9; 4096]);
        assert_eq!(read(&file, 3 * CHUNK + 8192, 4096), vec![0; 4096]);
        assert_eq!(read(&file, 3 * CHUNK + 65536, 4096), vec![5; 4096]);
    }
}
