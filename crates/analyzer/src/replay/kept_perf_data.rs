//! The perf data the side-band pass inflated and kept for the accounting pass (when all
//! of it fits `KEEP_INFLATED`), in one anonymous mapping: the blocks in trace order, each CPU's in its own
//! order. The accounting reads each kept block once, and every CPU's walk advances in trace
//! time round by round, so the mapping is read front to back: its pages are given back to the
//! system as the walks pass them, rather than held to the end of the accounting (64 MiB of an
//! hour's accounting peak, whose own state grows as the walks go).

/// Given back in whole chunks of this: the mapping is advised for huge pages (2 MiB on x86-64
/// and most arm64 kernels), and giving back part of one makes the kernel split it. (The
/// mapping need not start on a huge page's boundary; then a chunk spans two, and is only
/// slower to give back.)
const CHUNK: usize = 2 << 20;

/// The kept bytes, and how much of their front is given back.
#[derive(Debug, Default)]
pub struct KeptPerfData {
    map: Option<memmap2::MmapMut>,
    /// The bytes before this are given back: a multiple of [`unit`], or all of them.
    released: usize,
}

impl KeptPerfData {
    /// `len` bytes, to be filled by the side-band pass; none when `len` is 0.
    pub fn new(len: usize) -> anyhow::Result<Self> {
        use anyhow::Context;
        if len == 0 {
            return Ok(Self::default());
        }
        let m = memmap2::MmapMut::map_anon(len)
            .with_context(|| format!("mapping {len} bytes for inflated perf data"))?;
        // Advisory: without huge pages it is faulted in by 4 KiB pages, only slower.
        let _ = m.advise(memmap2::Advice::HugePage);
        Ok(Self {
            map: Some(m),
            released: 0,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or_default()
    }

    /// Gives back the whole chunks ([`unit`]) before byte `before`, which the caller will not
    /// read again (no block still to be read starts before it), and at the end, with `before`
    /// past it, all of it. What was given back reads as zeros.
    pub fn release_before(&mut self, before: usize) {
        let Some(m) = &self.map else {
            return;
        };
        // Whole chunks only, hence whole pages: the kernel rounds a length up to a page, and the
        // page holding `before` may hold a block still to be read.
        let end = if before >= m.len() {
            m.len()
        } else {
            before / unit() * unit()
        };
        if end <= self.released {
            return;
        }
        // SAFETY: `&mut self`, so no slice of the mapping is alive; the range is inside it,
        // starts page-aligned (the mapping is, and `released` is a multiple of the page), and
        // ends at a page boundary at or before `before` (or at the mapping's end, when nothing
        // is left to read), so no byte still to be read is in it.
        // MADV_DONTNEED on private anonymous memory only makes those pages read as zeros.
        let given = unsafe {
            m.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                self.released,
                end - self.released,
            )
        };
        // Advisory: if the kernel refuses, the pages stay until the mapping goes.
        if given.is_ok() {
            self.released = end;
        }
    }

    /// Bytes given back so far.
    #[cfg(test)]
    pub fn released(&self) -> usize {
        self.released
    }
}

/// The release granularity: [`CHUNK`], or the page where pages are larger.
fn unit() -> usize {
    let page = page_size();
    CHUNK.div_ceil(page) * page
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_chunks_before_the_first_pending_read_are_given_back() {
        let u = unit();
        assert_eq!(u % page_size(), 0);
        // Three chunks and a half.
        let mut k = KeptPerfData::new(3 * u + u / 2).unwrap();
        k.bytes_mut().fill(7);
        // A read still to come at 1.5 chunks: only the first chunk can go.
        k.release_before(u + u / 2);
        assert_eq!(k.released(), u);
        assert!(k.bytes()[..u].iter().all(|&b| b == 0), "given back");
        assert!(
            k.bytes()[u..].iter().all(|&b| b == 7),
            "the chunk holding the pending read, and those after it, are kept"
        );
        // Going back asks for nothing; nothing left to read gives back all, the last part
        // chunk too.
        k.release_before(10);
        assert_eq!(k.released(), u);
        k.release_before(usize::MAX);
        assert_eq!(k.released(), 3 * u + u / 2);
        assert!(k.bytes().iter().all(|&b| b == 0));
        let mut none = KeptPerfData::new(0).unwrap();
        none.release_before(usize::MAX);
        assert!(none.bytes().is_empty());
    }
}
