//! One CPU's perf ring buffer: a metadata page followed by 2^n data pages, written by the
//! kernel, read here. We copy the bytes between our tail and the kernel's head out verbatim
//! (no record parsing on this path) and then give the space back by advancing the tail.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapMut, MmapOptions};
use perf_event_open_sys::bindings::perf_event_mmap_page;

#[derive(Debug)]
pub struct Ring {
    map: MmapMut,
    data_offset: usize,
    data_size: usize,
    /// Our copy of `data_tail`: only this reader writes it.
    tail: u64,
}

impl Ring {
    /// Maps `1 + data_pages` pages of the event's fd. `data_pages` must be a power of two.
    pub fn map(fd: &File, page_size: usize, data_pages: usize) -> io::Result<Self> {
        assert!(
            data_pages.is_power_of_two(),
            "perf rings need 2^n data pages"
        );
        // Writable so that we can publish `data_tail`: the kernel then never overwrites
        // unread bytes and reports PERF_RECORD_LOST instead.
        // SAFETY: a perf fd's mapping is shared with the kernel, which writes the data pages
        // and data_head concurrently: we only touch them through atomics (head, tail) and
        // read data bytes the kernel has published and will not rewrite until we move the tail.
        let map = unsafe {
            MmapOptions::new()
                .len(page_size * (1 + data_pages))
                .map_mut(fd)?
        };
        // SAFETY: the first page of a perf mmap is a `perf_event_mmap_page`; the map is at
        // least one page long and page-aligned.
        let meta = unsafe { &*(map.as_ptr() as *const perf_event_mmap_page) };
        // Kernels before 4.1 leave data_offset/size at 0: the data starts after one page.
        let (data_offset, data_size) = if meta.data_size == 0 {
            (page_size, page_size * data_pages)
        } else {
            (meta.data_offset as usize, meta.data_size as usize)
        };
        let mut ring = Self {
            map,
            data_offset,
            data_size,
            tail: 0,
        };
        ring.tail = ring.tail_atomic().load(Ordering::Relaxed);
        Ok(ring)
    }

    fn meta(&self) -> *mut perf_event_mmap_page {
        self.map.as_ptr() as *mut perf_event_mmap_page
    }

    fn head_atomic(&self) -> &AtomicU64 {
        // SAFETY: data_head is an aligned u64 inside the mapped metadata page, which lives as
        // long as `self`; the kernel updates it concurrently, hence atomic access only.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.meta()).data_head)) }
    }

    fn tail_atomic(&self) -> &AtomicU64 {
        // SAFETY: as for data_head; data_tail is read by the kernel concurrently.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.meta()).data_tail)) }
    }

    /// Bytes written by the kernel and not yet copied.
    pub fn pending(&self) -> u64 {
        self.head_atomic()
            .load(Ordering::Acquire)
            .wrapping_sub(self.tail)
    }

    /// Appends every complete record the kernel has published to `out`; returns the ring
    /// position where the copied bytes start and how many bytes were copied.
    pub fn drain_into(&mut self, out: &mut Vec<u8>) -> (u64, usize) {
        // Acquire pairs with the kernel's write barrier before it publishes data_head
        // (perf_output_put_handle): every record byte below `head` is visible to us after this load.
        let head = self.head_atomic().load(Ordering::Acquire);
        let start = self.tail;
        let size = self.data_size;
        // The kernel never runs more than a ring ahead of a published tail; clamp anyway so a
        // misbehaving kernel cannot make us read out of bounds.
        let len = (head.wrapping_sub(start) as usize).min(size);
        if len == 0 {
            return (start, 0);
        }
        let begin = (start as usize) & (size - 1);
        let first = len.min(size - begin);
        let data = &self.map[self.data_offset..self.data_offset + size];
        out.extend_from_slice(&data[begin..begin + first]);
        // The record stream wraps to the start of the data area.
        out.extend_from_slice(&data[..len - first]);
        let head = start.wrapping_add(len as u64);
        self.tail = head;
        // Release orders our reads of the data before the kernel can see the space as free
        // (it reads data_tail before overwriting, perf_output_begin): without it the kernel
        // could overwrite bytes we are still copying.
        self.tail_atomic().store(head, Ordering::Release);
        (start, len)
    }
}
